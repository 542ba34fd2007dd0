"""The only way any adapter (CLI, hooks, MCP server, dashboard tests) reaches
the broker: one wire format, one error decoding, one place for `LOCKD_URL`.

Requests are described once by `Api` as plain tuples and written and read by
one small sans-I/O HTTP/1.1 codec (`lockd.httpcodec`): `Client` feeds it from
a blocking socket for the CLI and hooks, `AsyncClient` from asyncio streams
for the MCP server, tests and benchmarks (its calls and its event stream). A general HTTP library
was measured and dropped twice: `http.client`'s import cost a third of the git
hook's budget, and httpx took half of the MCP server's CPU per tool call. The
broker is our own, speaks HTTP/1.1 with Content-Length, and is on loopback.
"""

from __future__ import annotations

import json
import socket
import sys
from collections import namedtuple
from collections.abc import AsyncIterator

from lockd import config, httpcodec
from lockd.errors import LockdError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    import ssl
    from typing import Any

SESSION_HEADER = "X-Lockd-Session"


class Req(namedtuple("Req", "method path body params", defaults=(None, None))):
    """One broker call: method, path, JSON body, query params. A plain
    namedtuple: dataclasses and typing.NamedTuple would pull `inspect` and
    `typing` into every git commit through the hook."""

    __slots__ = ()
    method: str
    path: str
    body: dict[str, Any] | None
    params: dict[str, Any] | None

    def target(self) -> str:
        params = {k: _param(v) for k, v in (self.params or {}).items() if v is not None}
        if not params:
            return self.path
        import urllib.parse

        return self.path + "?" + urllib.parse.urlencode(params)


def _param(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class Api:
    """Every broker call, described once."""

    @staticmethod
    def stream() -> Req:
        return Req("GET", "/v1/stream")

    @staticmethod
    def health() -> Req:
        return Req("GET", "/health")

    @staticmethod
    def status() -> Req:
        return Req("GET", "/v1/status")

    @staticmethod
    def shutdown() -> Req:
        return Req("POST", "/v1/shutdown", {})

    @staticmethod
    def register(**fields: Any) -> Req:
        return Req("POST", "/v1/peers", fields)

    @staticmethod
    def heartbeat() -> Req:
        return Req("POST", "/v1/peers/me/heartbeat", {})

    @staticmethod
    def goodbye() -> Req:
        return Req("DELETE", "/v1/peers/me")

    @staticmethod
    def whoami() -> Req:
        return Req("GET", "/v1/peers/me")

    @staticmethod
    def set_summary(summary: str) -> Req:
        return Req("PUT", "/v1/peers/me/summary", {"summary": summary})

    @staticmethod
    def peers(scope: str = "machine", cwd: str | None = None, repo: str | None = None) -> Req:
        return Req("GET", "/v1/peers", params={"scope": scope, "cwd": cwd, "repo": repo})

    @staticmethod
    def send(to: str, message: str) -> Req:
        """With a fresh request key: a retry of this Req is stored once."""
        import os

        key = os.urandom(12).hex()
        return Req("POST", "/v1/messages", {"to": to, "message": message, "request_key": key})

    @staticmethod
    def inbox(mark_read: bool = True) -> Req:
        return Req("GET", "/v1/messages", params={"mark_read": mark_read})

    @staticmethod
    def ack(message_ids: list[str]) -> Req:
        return Req("POST", "/v1/messages/ack", {"message_ids": message_ids})

    @staticmethod
    def mark_read(message_ids: list[str]) -> Req:
        return Req("POST", "/v1/messages/read", {"message_ids": message_ids})

    @staticmethod
    def announce(
        repo_id: str,
        patterns: list[str],
        reason: str,
        mode: str = "exclusive",
        ttl_seconds: float | None = None,
        notify_when_free: bool = False,
        ignorecase: bool = False,
    ) -> Req:
        return Req(
            "POST",
            "/v1/intents",
            {
                "repo_id": repo_id,
                "patterns": patterns,
                "reason": reason,
                "mode": mode,
                "ttl_seconds": ttl_seconds,
                "notify_when_free": notify_when_free,
                "ignorecase": ignorecase,
            },
        )

    @staticmethod
    def locks(repo: str | None = None, path: str | None = None, peer: str | None = None) -> Req:
        return Req("GET", "/v1/intents", params={"repo": repo, "path": path, "peer": peer})

    @staticmethod
    def release(
        repo_id: str | None = None,
        intent_ids: list[str] | None = None,
        patterns: list[str] | None = None,
        force: bool = False,
    ) -> Req:
        return Req(
            "POST",
            "/v1/intents/release",
            {
                "repo_id": repo_id,
                "intent_ids": intent_ids,
                "patterns": patterns,
                "force": force,
            },
        )

    @staticmethod
    def check(repo_id: str, paths: list[str], viewer: str | None = None) -> Req:
        """`viewer` (a peer id or name) decides `mine`; a session credential does too."""
        return Req("POST", "/v1/check", {"repo_id": repo_id, "paths": paths, "viewer": viewer})

    @staticmethod
    def commit_notice(
        repo_id: str, intent_ids: list[str], paths: list[str], hook: str, committer: str | None
    ) -> Req:
        return Req(
            "POST",
            "/v1/notices/commit",
            {
                "repo_id": repo_id,
                "intent_ids": intent_ids,
                "paths": paths,
                "hook": hook,
                "committer": committer,
            },
        )

    @staticmethod
    def events(repo: str | None = None, limit: int = 100) -> Req:
        return Req("GET", "/v1/events", params={"repo": repo, "limit": limit})

    @staticmethod
    def dashboard_ticket() -> Req:
        """A one-time dashboard link for the session's own peer."""
        return Req("POST", "/v1/dashboard/ticket", {})

    @staticmethod
    def create_token(name: str) -> Req:
        """A team server user's token; the answer is the only place it appears."""
        return Req("POST", "/v1/tokens", {"name": name})

    @staticmethod
    def revoke_token(name: str) -> Req:
        import urllib.parse

        return Req("DELETE", "/v1/tokens/" + urllib.parse.quote(name, safe=""))

    @staticmethod
    def tokens() -> Req:
        return Req("GET", "/v1/tokens")


def _headers(token: str | None, credential: str | None, has_body: bool) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if credential:
        headers[SESSION_HEADER] = credential
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


def _decode(status: int, raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        if status < 400:  # never hand a caller a success it cannot read
            raise LockdError(
                "unavailable", f"the broker's answer (HTTP {status}) is not JSON: {raw[:80]!r}"
            ) from None
        body = {"message": raw[:200].decode(errors="replace")}
    if status >= 400:
        if not isinstance(body, dict):
            body = {"message": str(body)}
        raise LockdError.from_json(body, status)
    return body if isinstance(body, dict) else {"value": body}


def _unreachable(url: str, exc: BaseException) -> LockdError:
    ssl = sys.modules.get("ssl")  # loaded only for https:// URLs
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return LockdError(
            "unavailable",
            f"the TLS certificate of {url} is not trusted ({exc.verify_message}): set LOCKD_CA "
            "to the CA bundle or self-signed certificate it was issued with",
        )
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return LockdError(
            "unavailable",
            f"TLS with {url} failed ({exc}): check that LOCKD_URL's scheme (https://) and "
            "port match how the broker serves",
        )
    if config.remote_url() is not None:
        return LockdError(
            "unavailable", f"no lockd broker answers at {url} ({exc}); check LOCKD_URL"
        )
    return LockdError(
        "unavailable", f"no lockd broker answers at {url} ({exc}); start one with `lockd serve`"
    )


def _tls() -> ssl.SSLContext:
    import ssl

    return ssl.create_default_context(cafile=config.ca_file())


def _endpoint(url: str | None) -> tuple[str, bool, str, int]:
    """(url, https, host, port); the local broker's address without URL parsing."""
    if url is None and config.remote_url() is None:
        return config.broker_url(), False, config.HOST, config.port()
    import urllib.parse

    full = url or config.broker_url()
    parts = urllib.parse.urlsplit(full)
    https = parts.scheme == "https"
    return full, https, parts.hostname or config.HOST, parts.port or (443 if https else 80)


def _request_bytes(
    req: Req, data: bytes | None, host: str, port: int, headers: dict[str, str]
) -> bytes:
    return httpcodec.request_bytes(req.method, req.target(), data, host, port, headers)


class Client:
    """Synchronous client for the CLI and the hooks, on a plain socket.

    Not `http.client`: importing it (and the `email` package it needs) cost a
    third of the git hook's budget. The broker answers every non-stream
    request with Content-Length; chunked bodies are read too, for proxies in
    front of a team server. `https://` URLs wrap the socket in TLS."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        credential: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.url, self._https, self._host, self._port = _endpoint(url)
        self.token = token if token is not None else config.read_token()
        self.credential = credential
        self.timeout = timeout
        self._conn: socket.socket | None = None

    def _connection(self) -> socket.socket:
        if self._conn is None:
            sock = socket.create_connection((self._host, self._port), timeout=self.timeout)
            # Without this, a request's small writes wait on delayed ACKs (~40 ms each).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._https:
                sock = _tls().wrap_socket(sock, server_hostname=self._host)
            self._conn = sock
        return self._conn

    def _response(self) -> tuple[int, bytes]:
        assert self._conn is not None
        response, body = httpcodec.Response(), []
        while not response.done:
            data = self._conn.recv(65536)
            if not data:
                self.close()
                response.eof()
                break
            body += response.feed(data)
        if response.close:
            self.close()
        return response.status, b"".join(body)

    def call(self, req: Req) -> dict[str, Any]:
        data = json.dumps(req.body).encode() if req.body is not None else None
        headers = _headers(self.token, self.credential, data is not None)
        for attempt in (1, 2):
            reused = self._conn is not None
            try:
                conn = self._connection()
                conn.sendall(_request_bytes(req, data, self._host, self._port, headers))
                return _decode(*self._response())
            except (BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                # Retry only on a kept-alive connection (the broker closes idle
                # ones): on a fresh one the broker may have acted, so say so.
                if attempt == 2 or not reused:
                    raise _unreachable(self.url, exc) from None
            except (OSError, ValueError) as exc:
                self.close()
                raise _unreachable(self.url, exc) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def alive(self) -> bool:
        try:
            return self.call(Api.health()).get("status") == "ok"
        except LockdError:
            return False


if TYPE_CHECKING:
    import asyncio

    Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _network_errors() -> tuple[type[BaseException], ...]:
    import asyncio  # not at module level: the git hook imports this module

    return (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)


class AsyncClient:
    """The MCP server's client: the same lean HTTP/1.1 exchange on asyncio
    streams, a few kept-alive connections for concurrent calls, and the event
    stream. Not httpx: it took half of the MCP server's CPU per tool call."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        credential: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url, self._https, self._host, self._port = _endpoint(url)
        self.token = token if token is not None else config.read_token()
        self.credential = credential
        self.timeout = timeout
        self._idle: list[Conn] = []

    async def _open(self) -> Conn:
        import asyncio

        tls = _tls() if self._https else None
        # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancellation that
        # lands as the connection completes, and the cancelled task reads on forever.
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=tls, limit=2**24
            )
        sock = writer.get_extra_info("socket")
        if sock is not None:  # head and body go out together; no delayed-ACK stalls
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def _exchange(self, conn: Conn, payload: bytes) -> tuple[int, bytes, bool]:
        reader, writer = conn
        writer.write(payload)
        response, body = httpcodec.Response(), []
        while not response.done:
            data = await reader.read(65536)
            if not data:
                response.eof()
                break
            body += response.feed(data)
        return response.status, b"".join(body), response.close

    async def call(self, req: Req) -> dict[str, Any]:
        """The broker's answer; a refusal raises its LockdError."""
        return _decode(*await self._roundtrip(req))

    async def exchange(self, req: Req) -> tuple[int, Any]:
        """(status, JSON body or None) without judging the status: for load
        generators and tests that count answers. Unreachable still raises."""
        status, body = await self._roundtrip(req)
        return status, json.loads(body) if body else None

    async def _roundtrip(self, req: Req) -> tuple[int, bytes]:
        import asyncio

        if self.token is None:
            self.token = config.read_token()
        data = json.dumps(req.body).encode() if req.body is not None else None
        headers = _headers(self.token, self.credential, data is not None)
        payload = _request_bytes(req, data, self._host, self._port, headers)
        for attempt in (1, 2):
            conn = self._idle.pop() if self._idle else None
            reused = conn is not None
            done = False
            try:
                conn = conn or await self._open()
                async with asyncio.timeout(self.timeout):  # see _open: not wait_for
                    status, body, close = await self._exchange(conn, payload)
                done = True
            except _network_errors() as exc:
                # As the sync client: retry only a kept-alive connection the
                # broker closed; elsewhere it may have acted.
                stale = isinstance(exc, (ConnectionError, asyncio.IncompleteReadError))
                if attempt == 1 and reused and stale:
                    continue
                raise _unreachable(self.url, exc) from None
            finally:
                if conn is not None and not done:
                    conn[1].close()  # half-read or cancelled: never reuse it
            if close:
                conn[1].close()
            else:
                self._idle.append(conn)
            return status, body
        raise AssertionError("unreachable")

    async def stream(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield (event, data) from GET /v1/stream until it closes."""
        headers = _headers(self.token, self.credential, False)
        headers["Accept"] = "text/event-stream"
        writer = None
        try:
            reader, writer = await self._open()
            writer.write(_request_bytes(Api.stream(), None, self._host, self._port, headers))
            response, events, refusal = httpcodec.Response(), httpcodec.Events(), []
            while not response.done and (data := await reader.read(65536)):
                pieces = response.feed(data)
                if response.status >= 400:
                    refusal += pieces
                    continue
                for piece in pieces:
                    for event in events.feed(piece):
                        yield event
            if response.status >= 400:
                _decode(response.status, b"".join(refusal))
        except _network_errors() as exc:
            raise _unreachable(self.url, exc) from None
        finally:
            if writer is not None:
                writer.close()
        raise _unreachable(self.url, ConnectionResetError("the event stream ended"))

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()
