"""The broker's front door, as one ASGI middleware: body size, Host (DNS
rebinding), Origin and content type (cross-site browser writes), then the
token. Each refusal is a JSON body that says what is wrong.

A team server (`lockd serve --public-name NAME`) also accepts its public name
as Host and `https://NAME[:port]` as Origin, and per-user tokens beside the
machine token; the caller's user goes into the ASGI scope as `lockd.user`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from lockd import config
from lockd.accounts import Accounts

if TYPE_CHECKING:
    from lockd.server.dashboard import DashboardAuth

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
OPEN_PATHS = {("GET", "/health")}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
USER_KEY = "lockd.user"  # the ASGI scope key that names the caller's user


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RequestCount:
    """HTTP requests seen, for `/v1/status`: proves an idle session stays quiet."""

    def __init__(self) -> None:
        self.total = 0


class Guard:
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
        self.hosts = LOOPBACK_HOSTS | set(self.public_names)
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
            status, kind, message = refusal
            await _json(send, status, {"error": kind, "message": message})
            return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        host = headers.get("host", "")
        if _host_name(host) not in self.hosts:
            names = ", ".join(["127.0.0.1", *self.public_names])
            return 403, "forbidden", f"Host {host!r} is not a loopback name; use {names}"
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.origins:
            return 403, "forbidden", f"cross-site request from Origin {origin!r} refused"
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.MAX_BODY_BYTES:
            return 413, "too_large", f"body is {length} bytes; the limit is {config.MAX_BODY_BYTES}"
        if method in WRITE_METHODS and (
            length not in (None, "0") or "transfer-encoding" in headers
        ):
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return 415, "invalid", f"content-type {ctype or 'none'!r}: send application/json"
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


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
