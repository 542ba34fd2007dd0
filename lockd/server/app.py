"""The broker process: the FastAPI app, its lifespan, and `serve()`.

Only `lockd serve` imports this module, so the CLI and hooks stay light.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import gc
import ipaddress
import logging
import logging.handlers
import os
import re
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import IO, Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lockd import __version__
from lockd.broker.accounts import Accounts
from lockd.broker.events import EventHub
from lockd.broker.registry import Registry
from lockd.broker.repos import RepoIds
from lockd.core import render
from lockd.core.errors import KINDS, LockdError, invalid
from lockd.core.validation import excerpt, safe_message
from lockd.local import config, processes
from lockd.server import dashboard, schemas
from lockd.server.dashboard_auth import DashboardAuth
from lockd.server.routes import router
from lockd.server.security import BodyLimit, Guard, HostCheck, RequestCount
from lockd.store.engine import make_store

log = logging.getLogger("lockd")


MAX_ERRORS_SHOWN = 10


def _where(loc: Any) -> str:
    """('body', 'patterns', 3) -> 'patterns[3]'; a field name the caller made
    up (an unknown key) is cut short like any other input."""
    where = ""
    for part in loc:
        if part == "body" and not where:
            continue
        if isinstance(part, int):
            where += f"[{part}]"
        else:
            name = str(part)
            name = name if len(name) <= 40 and name.isprintable() else excerpt(name, 40)
            where += f".{name}" if where else name
    return where or "body"


def _refusal(errors: list[Any]) -> dict[str, Any]:
    """A 422 for pydantic's errors: each names its field and quotes at most a
    short excerpt of the input, so a large bad body is never echoed back."""
    parts, shown = [], []
    for err in errors[:MAX_ERRORS_SHOWN]:
        where = _where(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        got = f" (got {excerpt(err['input'])})" if "input" in err else ""
        sep = " " if err.get("type") in schemas.TEXT_ERRORS else ": "
        parts.append(f"{where}{sep}{msg}{got}")
        item = {"loc": where, "type": str(err.get("type")), "msg": safe_message(msg, 300)}
        if "input" in err:
            item["input"] = excerpt(err["input"])
        shown.append(item)
    if len(errors) > MAX_ERRORS_SHOWN:
        parts.append(f"and {len(errors) - MAX_ERRORS_SHOWN} more")
    return {
        "error": "invalid",
        "message": safe_message("; ".join(parts)),
        "detail": {"errors": shown, "count": len(errors)},
    }


def create_app(
    token: str,
    port: int,
    db_path: str,
    on_shutdown: Callable[[], None] | None = None,
    public_names: tuple[str, ...] = (),
    tls: bool = False,
    host: str = config.HOST,
    on_ready: Callable[[], None] | None = None,
) -> FastAPI:
    """db_path: a SQLite file, or a postgresql:// URL for a team server;
    public_names: the names clients reach a team server by (Host, Origin);
    on_ready: called once the store is open and requests can be answered."""
    accounts = Accounts(token)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = make_store(db_path)
        await store.open()
        await accounts.open(store)
        reg = Registry(store, EventHub())
        reg.on_users_changed = accounts.reload
        repos = RepoIds(store)
        await repos.load()
        await reg.start()
        app.state.registry = reg
        app.state.repos = repos
        # What is loaded now (modules, the state read at start) lives as long as
        # the broker: keep it out of the collector's full passes, which over a
        # large heap paused the event loop (and /health) for 60-200 ms.
        gc.collect()
        gc.freeze()
        log.info(
            "broker ready on %s://%s:%s%s, db %s",
            "https" if tls else "http",
            host,
            port,
            f" as {', '.join(public_names)}" if public_names else "",
            store.path,
        )
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await reg.stop()
            await store.close()
            log.info("broker stopped")

    app = FastAPI(
        title="lockd broker", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.shutdown = on_shutdown or (lambda: None)
    app.state.accounts = accounts
    app.include_router(router)
    app.state.dashboard = DashboardAuth(port)
    app.include_router(dashboard.router)

    @app.exception_handler(LockdError)
    async def domain_error(request: Request, exc: LockdError) -> JSONResponse:
        body = exc.to_json()
        # The next step in the words of whoever asked: the page, or a script's route.
        surface = "dashboard" if request.url.path.startswith("/dashboard") else "http"
        message = render.error_text(exc.message, exc.detail, surface)
        body["message"] = safe_message(message)  # it may quote a long input
        return JSONResponse(body, status_code=exc.http_status)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        """Starlette's own refusals (a body that is not UTF-8 JSON, an unknown
        route, a wrong method) in the broker's error shape, not {"detail": ...}."""
        kind = next((k for k, v in KINDS.items() if v[0] == exc.status_code), "invalid")
        return JSONResponse(
            {"error": kind, "message": safe_message(str(exc.detail))},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_refusal(list(exc.errors())), status_code=422)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Starlette re-raises it after this answer, and uvicorn would log it again.
        setattr(exc, LOGGED, True)
        return JSONResponse(
            {
                "error": "internal",
                "message": f"internal error: {type(exc).__name__}; see the log"
                f" at {config.log_path()}",
            },
            status_code=500,
        )

    app.state.requests = RequestCount()
    # Starlette runs the last added first: HostCheck, then Guard, then BodyLimit.
    app.add_middleware(BodyLimit)
    app.add_middleware(
        Guard,
        accounts=accounts,
        port=port,
        count=app.state.requests,
        dashboard=app.state.dashboard,
        public_names=public_names,
        tls=tls,
    )
    app.add_middleware(HostCheck, public_names=public_names)
    return app


LOGGED = "_lockd_logged"  # set on an exception the crash handler has logged


class LoggedOnce(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" for an exception the
    app's crash handler already logged (with the request it came from)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, LOGGED, False)


def setup_logging(verbose: bool = False) -> None:
    handler = logging.handlers.RotatingFileHandler(
        config.log_path(), maxBytes=5_000_000, backupCount=3
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # They reach the file through the root logger: a handler of their own
        # too wrote each uvicorn line three times (uvicorn.error, uvicorn, root).
        logging.getLogger(name).handlers = []
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    uv_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, LoggedOnce) for f in uv_error.filters):
        uv_error.addFilter(LoggedOnce())


def _take_home_lock() -> IO[str]:
    """One broker per LOCKD_HOME: an flock held for the broker's lifetime."""
    fh = open(config.home() / "broker.lock", "a+")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        other = fh.read().strip() or "?"
        fh.close()
        raise LockdError(
            "conflict",
            f"another broker (pid {other}) already serves LOCKD_HOME={config.home()}; "
            "stop it with `lockd stop` first",
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


PUBLIC_NAME_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def tls_settings(
    host: str, cert: str | None, key: str | None, public_names: tuple[str, ...]
) -> tuple[str, str] | None:
    """(cert, key) to serve TLS with, or None for plain loopback HTTP. Refuses
    a bind beyond loopback without TLS and a public name: tokens would cross
    the network in clear, and every Host header would be refused."""
    for name in public_names:
        if not PUBLIC_NAME_RE.match(name):
            raise invalid(
                f"public name {name!r} is not a host name: give it as clients write it in "
                "LOCKD_URL, without scheme or port (lockd.example.com)"
            )
    if bool(cert) != bool(key):
        missing = "--tls-key KEY" if cert else "--tls-cert CERT"
        raise invalid(f"TLS needs both a certificate and its key: add {missing}")
    if not is_loopback(host):
        if not cert:
            raise invalid(
                f"binding {host} (beyond loopback) needs TLS: pass --tls-cert CERT and "
                "--tls-key KEY (or LOCKD_TLS_CERT and LOCKD_TLS_KEY); "
                "create users' tokens with `lockd token create NAME`"
            )
        if not public_names:
            raise invalid(
                f"binding {host} needs --public-name NAME (or LOCKD_PUBLIC_NAME): the host "
                "name clients use in LOCKD_URL; requests with any other Host are refused"
            )
    if not cert or not key:
        return None
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise invalid(
            f"cannot serve TLS with certificate {cert!r} and key {key!r} ({exc}): "
            "give readable PEM files that belong together"
        ) from None
    return cert, key


def _bind(port: int, host: str = config.HOST) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: uvicorn writes a response in pieces, and
    # with Nagle on, keep-alive requests stall ~40 ms on the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            holder = processes.port_holder(port) or "another program"
            raise LockdError(
                "conflict",
                f"port {port} on {host} is taken by {holder}; "
                "choose another with --port or LOCKD_PORT",
            ) from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(
            exc, socket.gaierror
        ):
            raise invalid(
                f"cannot listen on --host {host!r} ({exc}): give an address of "
                "this machine, or 0.0.0.0 for all"
            ) from None
        raise
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def ready_line(port: int, host: str, public_names: tuple[str, ...], tls: bool) -> str:
    """`lockd serve`'s one line: where it answers, its home and log, how to stop it."""
    name = public_names[0] if public_names else host
    where = f"{'https' if tls else 'http'}://{name}:{port}"
    return (
        f"lockd {__version__} ready at {where} (home {config.home()}, log {config.log_path()}); "
        "stop with Ctrl-C or `lockd stop`"
    )


def _exit_on_signal(signum: int, frame: object) -> None:
    """SIGTERM is a clean stop (0); SIGINT is Ctrl-C (130, as shells expect)."""
    raise SystemExit(130 if signum == signal.SIGINT else 0)


def serve(
    port: int | None = None,
    verbose: bool = False,
    db: str | None = None,
    host: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    public_names: tuple[str, ...] = (),
) -> int:
    """Run the broker in the foreground until stopped. db: --db, else LOCKD_DB,
    else the SQLite file in LOCKD_HOME (the zero-setup default). A team server
    binds `host` beyond loopback only with TLS and a public name."""
    port = port or config.port()
    db = db or os.environ.get("LOCKD_DB", "").strip() or str(config.db_path())
    host = host or config.HOST
    tls_cert = tls_cert or os.environ.get("LOCKD_TLS_CERT", "").strip() or None
    tls_key = tls_key or os.environ.get("LOCKD_TLS_KEY", "").strip() or None
    env_names = os.environ.get("LOCKD_PUBLIC_NAME", "")
    public_names = public_names or tuple(n.strip() for n in env_names.split(",") if n.strip())
    tls = tls_settings(host, tls_cert, tls_key, public_names)
    config.lease_seconds(), config.name_hold_seconds()  # a bad setting: refused here, clearly
    os.umask(0o077)  # whatever the broker creates (database, -wal, -shm, logs) is private
    narrowed = config.make_private()
    lock = _take_home_lock()
    try:
        sock = _bind(port, host)
    except BaseException:
        lock.close()
        raise
    setup_logging(verbose)
    for change in narrowed:
        log.warning("LOCKD_HOME was open to other users; made private: %s", change)
    token = config.ensure_token()
    (config.home() / "broker.json").write_text(f'{{"pid": {os.getpid()}, "port": {port}}}\n')
    server: uvicorn.Server | None = None

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    def ready() -> None:  # the one line a person starting it sees
        print(ready_line(port, host, public_names, tls is not None), flush=True)

    app = create_app(
        token,
        port,
        db,
        on_shutdown=stop,
        public_names=public_names,
        tls=tls is not None,
        host=host,
        on_ready=ready,
    )
    uv_config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    server = uvicorn.Server(uv_config)
    # uvicorn stops on SIGTERM and then raises the signal again under the handler
    # it found: the default one would end the process before the `finally` below
    # (broker.json would stay). Ours turns it into SystemExit, so cleanup runs.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)  # the same, whatever the parent left for it
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
        (config.home() / "broker.json").unlink(missing_ok=True)
        lock.close()
    return 0
