"""What every scripted model API of these tests shares (`fake_anthropic` for
Claude Code, `fake_models` for Codex and Gemini CLI): an HTTP server on
127.0.0.1 (a random port) that records every request, plays its script one
step per *turn* request, and answers in JSON or server-sent events. Each
protocol module says what a turn is, how a step is written on its wire, and
what the rest of its API answers.

A script is a list of steps (or functions of the request returning one), or
one function of the request; when it runs out, `next_step` gives None and the
protocol's model says "done". An answer that raises (a broken script) is
recorded in `errors` and answered 500, so the test and the client both see it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar


@dataclass
class Recorded:
    """One request as the client sent it; protocols add what they read of it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.perf_counter)  # when it arrived


R = TypeVar("R", bound=Recorded)
S = TypeVar("S")


class FakeServer(Generic[R, S]):
    """Use as a context manager. Subclasses set `request_type` and `client`,
    and implement `answer`."""

    request_type: type[R]
    client = "the client"  # who talks to it, for failure messages

    def __init__(self, script: Iterable[S | Callable[[R], S]] | Callable[[R], S | None] = ()):
        self.script = script
        self.requests: list[R] = []
        self.errors: list[str] = []
        self._lock = threading.Condition()
        self._steps: Iterator[S | Callable[[R], S]] | None = (
            None if callable(script) else iter(script)
        )
        fake = self

        class Bound(Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Bound)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ---- what arrived -----------------------------------------------------------
    def is_turn(self, request: R) -> bool:
        """A request that gets the script's next step (one that offers tools)."""
        return bool(request.body.get("tools"))

    @property
    def turns(self) -> list[R]:
        with self._lock:
            return [r for r in self.requests if self.is_turn(r)]

    def wait_turns(self, n: int, timeout: float = 60.0, proc: Any = None) -> list[R]:
        """Block until at least `n` turn requests arrived; fails on timeout, or
        as soon as `proc` (the client's process, a Popen) has exited."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while (seen := sum(self.is_turn(r) for r in self.requests)) < n:
                if proc is not None and proc.poll() is not None:
                    code = proc.returncode
                    raise AssertionError(
                        f"{self.client} exited ({code}) after {seen} of {n} requests"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.client} sent {seen} model requests, not {n}")
                self._lock.wait(0.1)
        return self.turns

    def record(self, request: R) -> None:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()

    # ---- answering ----------------------------------------------------------------
    def next_step(self, request: R) -> S | None:
        """The script's answer to this turn; None once it has run out."""
        if self._steps is None:
            return self.script(request)  # type: ignore[operator]
        with self._lock:
            step = next(self._steps, None)
        return step(request) if callable(step) else step  # type: ignore[return-value]

    def answer(self, handler: Handler, request: R) -> None:  # pragma: no cover
        raise NotImplementedError

    def broken(self, message: str) -> dict[str, Any]:
        """The 500 body for an answer that raised, in the protocol's error shape."""
        return {"error": {"message": message}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeServer[Any, Any]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        size = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(size) if size else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"_raw": raw.decode(errors="replace")}
        request = self.owner.request_type(self.command, self.path, dict(self.headers), body)
        self.owner.record(request)
        try:
            self.owner.answer(self, request)
        except Exception as exc:  # a broken script: say so, in the test and to the client
            self.owner.errors.append(repr(exc))
            self.json(500, self.owner.broken(repr(exc)))

    def json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(data).encode())

    def sse(self, events: Iterable[tuple[str | None, dict[str, Any]]]) -> None:
        """One whole event stream (each event named, or data only)."""
        payload = b"".join(
            ((f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n").encode()
            for name, data in events
        )
        self._send(200, "text/event-stream", payload, {"cache-control": "no-cache"})

    def _send(
        self, status: int, kind: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
