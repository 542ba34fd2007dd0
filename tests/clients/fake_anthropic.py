"""A scripted stand-in for the Anthropic Messages API, for driving the real
Claude Code CLI without a model.

`FakeAnthropic(script)` listens on 127.0.0.1 (a random port) and answers
`POST /v1/messages` with the streaming events Claude Code expects
(`message_start`, `content_block_start`/`_delta`/`_stop`, `message_delta`,
`message_stop`). Each answer to a *turn* request (one that offers tools) is the
next step of the script: `tool_use(name, **input)` or `say(text)`, or a
function of the request returning one, so a test can answer what the model was
shown. A tool name may be a pattern (`mcp__*lockd__whoami`): the answer calls
the one tool of that shape the request offers, as a model would read the name
off its tool list (an MCP server's tools are named after the server, which
depends on how it was configured). When the script runs out the model says
"done" and the turn ends.
Requests without tools (titles, summaries, quota probes) get a short text and
consume nothing. `count_tokens` gets a count. Every request is recorded: a test
reads exactly what reached the model (tool results, hook context, reminders)
from `fake.requests`.

A step may `hold` an event: the answer waits until the test sets it, which
keeps that Claude Code process alive (and its MCP session registered) while
another one runs.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD_LIMIT = 120.0  # a held answer gives up (and says so) rather than hang a test


@dataclass
class Step:
    """One answer of the model: content blocks and why it stopped."""

    blocks: list[dict[str, Any]]
    stop_reason: str
    hold: threading.Event | None = None

    def held(self, event: threading.Event) -> Step:
        """The same answer, given only once `event` is set."""
        return Step(self.blocks, self.stop_reason, event)

    @property
    def id(self) -> str:
        """The tool_use id, to find this call's result in a later request."""
        return next(b["id"] for b in self.blocks if b["type"] == "tool_use")

    @property
    def name(self) -> str:
        """The tool called (once answered, the real name a pattern stood for)."""
        return next(b["name"] for b in self.blocks if b["type"] == "tool_use")

    def resolve(self, request: Request) -> None:
        """Tool name patterns replaced, in place, by the one tool of each
        shape `request` offers; AssertionError when there is not exactly one."""
        for block in self.blocks:
            if block["type"] != "tool_use" or not any(c in block["name"] for c in "*?["):
                continue
            offered = request.offered_tools()
            found = fnmatch.filter(offered, block["name"])
            if len(found) != 1:
                raise AssertionError(
                    f"the request offers {len(found)} tools like {block['name']}: "
                    f"{found or sorted(offered)}"
                )
            block["name"] = found[0]


_ids = itertools.count(1)


def tool_use(name: str, **tool_input: Any) -> Step:
    block = {"type": "tool_use", "id": f"toolu_fake{next(_ids):04d}", "name": name}
    return Step([{**block, "input": tool_input}], "tool_use")


def say(text: str) -> Step:
    return Step([{"type": "text", "text": text}], "end_turn")


@dataclass
class Request:
    """One request as Claude Code sent it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.perf_counter)  # when it arrived

    @property
    def is_turn(self) -> bool:
        return self.path.startswith("/v1/messages") and bool(self.body.get("tools"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def tool_names(self) -> list[str]:
        return [t.get("name", "") for t in self.body.get("tools") or []]

    def offered_tools(self) -> list[str]:
        """Every tool the model may call: those in `tools`, and the deferred
        ones (MCP servers' tools, in 2.1.332) that the conversation lists one
        name a line for ToolSearch to load."""
        deferred = re.findall(r"^mcp__[\w-]+$", self.text(), re.M)
        return list(dict.fromkeys([*self.tool_names, *deferred]))

    def blocks(self) -> Iterator[dict[str, Any]]:
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, str):
                yield {"type": "text", "text": content, "role": message.get("role")}
                continue
            for block in content or []:
                yield {**block, "role": message.get("role")}

    def tool_results(self) -> dict[str, dict[str, Any]]:
        """tool_use_id → {"text", "is_error"} for every tool result in the conversation."""
        out = {}
        for block in self.blocks():
            if block.get("type") == "tool_result":
                out[block["tool_use_id"]] = {
                    "text": _text_of(block.get("content")),
                    "is_error": bool(block.get("is_error")),
                }
        return out

    def text(self) -> str:
        """Everything the model is shown in the conversation, as one string:
        user and system turns, reminders, tool results (not the system prompt)."""
        parts = []
        for block in self.blocks():
            if block.get("type") == "text":
                parts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                parts.append(_text_of(block.get("content")))
        return "\n".join(parts)

    def last_text(self) -> str:
        """What is new in this request: everything after the model's last answer."""
        messages = self.messages
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
        return Request(
            self.method, self.path, self.headers, {"messages": messages[last + 1 :]}
        ).text()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(
        c.get("text", "") for c in content or [] if isinstance(c, dict) and c.get("type") == "text"
    )


Script = Iterable[Step | Callable[[Request], Step]] | Callable[[Request], Step | None]


@dataclass
class FakeAnthropic:
    """Use as a context manager; `url` goes into ANTHROPIC_BASE_URL."""

    script: Script = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._turn_seen = threading.Condition(self._lock)
        self._steps: Iterator[Step | Callable[[Request], Step]] | None = (
            None if callable(self.script) else iter(self.script)  # type: ignore[arg-type]
        )
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def turns(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.is_turn]

    def wait_turns(self, n: int, timeout: float = 60.0, proc: Any = None) -> list[Request]:
        """Block until at least `n` turn requests arrived; fails on timeout, or
        as soon as `proc` (the Claude Code process, a Popen) has exited."""
        deadline = time.monotonic() + timeout
        with self._turn_seen:
            while (seen := sum(r.is_turn for r in self.requests)) < n:
                if proc is not None and proc.poll() is not None:
                    code = proc.returncode
                    raise AssertionError(
                        f"Claude Code exited ({code}) after {seen} of {n} requests"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"Claude Code sent {seen} model requests, not {n}")
                self._turn_seen.wait(0.1)
        return self.turns

    # ---- answering ----------------------------------------------------------
    def record(self, request: Request) -> None:
        with self._turn_seen:
            self.requests.append(request)
            self._turn_seen.notify_all()

    def next_step(self, request: Request) -> Step:
        if not request.is_turn:
            return say("ok")
        if self._steps is None:
            step = self.script(request)  # type: ignore[operator]
        else:
            with self._lock:
                step = next(self._steps, None)
            if callable(step):
                step = step(request)
        step = step or say("done")
        step.resolve(request)
        return step


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeAnthropic

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
            body = {"_raw": raw.decode(errors="replace")}
        path = self.path.split("?", 1)[0]
        request = Request(self.command, self.path, dict(self.headers), body)
        self.owner.record(request)
        if self.command == "POST" and path == "/v1/messages/count_tokens":
            return self._json(200, {"input_tokens": 1000})
        if path == "/api/hello":  # its connectivity check (off with nonessential traffic)
            return self._json(200, {"message": "hello"})
        if self.command != "POST" or path != "/v1/messages":
            # Anything else (nothing else seen from 2.1.332) is answered at
            # once, so nothing waits for it.
            return self._json(
                404,
                {"type": "error", "error": {"type": "not_found_error", "message": "fake: " + path}},
            )
        try:
            step = self.owner.next_step(request)
        except Exception as exc:  # a broken script: say so, in the test and to Claude Code
            self.owner.errors.append(repr(exc))
            return self._json(
                500, {"type": "error", "error": {"type": "api_error", "message": repr(exc)}}
            )
        if step.hold is not None and not step.hold.wait(HOLD_LIMIT):
            self.owner.errors.append("a held answer was never released")
        if body.get("stream"):
            self._stream(body, step)
        else:
            self._json(200, _message(body, step))

    def _json(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _stream(self, body: dict[str, Any], step: Step) -> None:
        payload = b"".join(
            f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            for name, data in _events(body, step)
        )
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


_USAGE = {"input_tokens": 10, "output_tokens": 1}


def _message(body: dict[str, Any], step: Step) -> dict[str, Any]:
    return {
        "id": f"msg_fake{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude"),
        "content": step.blocks,
        "stop_reason": step.stop_reason,
        "stop_sequence": None,
        "usage": _USAGE,
    }


def _events(body: dict[str, Any], step: Step) -> Iterator[tuple[str, dict[str, Any]]]:
    start = {**_message(body, step), "content": [], "stop_reason": None}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(step.blocks):
        if block["type"] == "tool_use":
            opened = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            opened = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": opened,
            },
        )
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": step.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 1},
        },
    )
    yield "message_stop", {"type": "message_stop"}
