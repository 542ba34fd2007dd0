"""The broker's front door: three ASGI middlewares, one concern each,
outermost first.

- HostCheck: exactly one Host header, naming this broker (DNS rebinding).
- Guard: Origin and content type (cross-site browser writes), then the token.
- BodyLimit: the body counted as it arrives, refused past MAX_BODY_BYTES.

Each refusal is a short JSON body that says what is wrong.

A team server (`lockd serve --public-name NAME`) also accepts its public name
as Host and `https://NAME[:port]` as Origin, and per-user tokens beside the
machine token; the caller's user goes into the ASGI scope as `lockd.user`."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockd.broker.accounts import Accounts
from lockd.core.validation import excerpt
from lockd.local import config

if TYPE_CHECKING:
    from lockd.server.dashboard_auth import DashboardAuth

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")  # as refusals suggest them
OPEN_PATHS = {("GET", "/health"), ("GET", "/favicon.ico")}  # no token, no cookie
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
USER_KEY = "lockd.user"  # the ASGI scope key that names the caller's user
# host [":" port]: a bracketed IPv6 literal, or letters, digits, dots and
# hyphens (names and IPv4); the port, if any, ASCII digits (RFC 9110 7.2).
HOST_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?")
IPV4_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")


def host_refusal(values: list[str], public_names: tuple[str, ...] = ()) -> str | None:
    """Why these Host header values are refused, or None. Accepted: exactly one
    value, a loopback name or address (localhost, 127.x.x.x, [::1]) or one of
    the team server's public names, with an optional numeric port."""
    use = ", ".join([*LOOPBACK_NAMES, *public_names])
    if len(values) != 1:
        got = "no Host header" if not values else f"{len(values)} Host headers"
        return f"{got}: send exactly one, naming the broker ({use})"
    value = values[0]
    parsed = HOST_RE.fullmatch(value)
    if parsed is None or (parsed.group(2) is not None and int(parsed.group(2)) > 65535):
        return f"Host {excerpt(value)} is not a host and an optional numeric port; use {use}"
    host = parsed.group(1).lower()
    if host in public_names or _is_loopback(host):
        return None
    return f"Host {excerpt(value)} is not a loopback name (DNS rebinding?); use {use}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        if host.startswith("["):
            return ipaddress.IPv6Address(host[1:-1]).is_loopback
        return IPV4_RE.fullmatch(host) is not None and ipaddress.IPv4Address(host).is_loopback
    except ValueError:  # 999.0.0.1, [1:2:3], a leading zero
        return False


def _may_have_body(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"transfer-encoding" or (key == b"content-length" and value != b"0"):
            return True
    return False


class HostCheck:
    """DNS rebinding: a web page whose name an attacker points at 127.0.0.1
    reaches the broker with its own name as Host. Only the broker's names pass."""

    def __init__(self, app: ASGIApp, public_names: tuple[str, ...] = ()) -> None:
        self.app = app
        self.public_names = tuple(n.lower() for n in public_names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"host"]
            why = host_refusal(values, self.public_names)
            if why is not None:
                await refuse(scope, send, 403, "forbidden", why)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Reads the whole body before the app runs, counting what arrives: a
    chunked body has no Content-Length to check up front, and FastAPI would
    read and parse all of it. Past the limit: 413, and no more is read."""

    def __init__(self, app: ASGIApp, limit: int = config.MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope["headers"] if k == b"content-length"]
        if declared and declared[0].isdigit() and int(declared[0]) > self.limit:
            await self._refuse(scope, send, f"body is {int(declared[0])} bytes")
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send, f"body is over {self.limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message | None = {"type": "http.request", "body": b"".join(chunks)}

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()  # after the body: http.disconnect, for streams

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, got: str) -> None:
        limit = f"{self.limit // 1024} KiB" if self.limit % 1024 == 0 else f"{self.limit} bytes"
        await refuse(
            scope, send, 413, "too_large", f"{got}; the limit is {limit}: send less", close=True
        )


class RequestCount:
    """HTTP requests seen, for `/v1/status`: proves an idle session stays quiet."""

    def __init__(self) -> None:
        self.total = 0


class Guard:
    """Cross-site browser requests (a foreign Origin, a non-JSON write), then
    the token: the machine's, a team user's, or the dashboard's cookie."""

    def __init__(
        self,
        app: ASGIApp,
        accounts: Accounts,
        port: int,
        count: RequestCount | None = None,
        dashboard: DashboardAuth | None = None,
        public_names: tuple[str, ...] = (),
        tls: bool = False,
    ) -> None:
        self.app = app
        self.dashboard = dashboard
        self.count = count or RequestCount()
        self.accounts = accounts
        self.port = port
        self.public_names = tuple(n.lower() for n in public_names)
        scheme = "https" if tls else "http"
        self.origins = {f"{scheme}://{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}
        for name in self.public_names:  # also through a TLS proxy on 443 in front
            self.origins |= {f"https://{name}:{port}", f"https://{name}"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.count.total += 1
        refusal = self.check(scope)
        if refusal is not None:
            await refuse(scope, send, *refusal)
            return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.origins:
            return 403, "forbidden", f"cross-site request from Origin {excerpt(origin)} refused"
        length = headers.get("content-length")
        if method in WRITE_METHODS and (
            length not in (None, "0") or "transfer-encoding" in headers
        ):
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                got = excerpt(ctype) if ctype else "none"
                return 415, "invalid", f"content-type {got}: send application/json"
        if (method, path) in OPEN_PATHS:
            return None
        if self.dashboard is not None and (path == "/dashboard" or path.startswith("/dashboard/")):
            # The browser page: its cookie, never the token, and only on these routes.
            return self.dashboard.refusal(method, path, headers)
        auth = headers.get("authorization", "")
        given = auth[7:].strip().encode() if auth.lower().startswith("bearer ") else b""
        caller = self.accounts.identify(given) if given else None
        if caller is not None and caller.revoked:
            return (
                401,
                "unauthorized",
                f"the token of user {caller.user!r} was revoked: ask the broker's admin for a "
                f"new one (`lockd token create {caller.user}`) and set LOCKD_TOKEN to it",
            )
        if caller is None or caller.user is None:
            why = "wrong token" if given else "no token"
            where = (
                " (or a user token from `lockd token create NAME`, in LOCKD_TOKEN)"
                if self.public_names
                else ""
            )
            return (
                401,
                "unauthorized",
                (
                    f"{why}: send 'Authorization: Bearer <token>' with the token from "
                    f"{config.token_path()}{where}"
                ),
            )
        scope[USER_KEY] = caller.user
        return None


async def refuse(
    scope: Scope, send: Send, status: int, kind: str, message: str, close: bool = False
) -> None:
    """A refusal before the app read the body: the connection closes after it
    when a body may follow (or `close`), so that none of it is read."""
    data = json.dumps({"error": kind, "message": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
    ]
    if close or _may_have_body(scope):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
