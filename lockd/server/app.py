"""The broker process: the FastAPI app, its lifespan, and `serve()`.

Only `lockd serve` imports this module, so the CLI and hooks stay light.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import logging.handlers
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import IO, Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lockd import __version__, config
from lockd.errors import KINDS, LockdError
from lockd.events import EventHub
from lockd.registry import Registry
from lockd.server import dashboard
from lockd.server.routes import router
from lockd.server.security import Guard, RequestCount
from lockd.store import make_store

log = logging.getLogger("lockd")


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        got = f" (got {_short(err['input'])})" if "input" in err else ""
        parts.append(f"{where or 'body'}: {err.get('msg')}{got}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def create_app(
    token: str, port: int, db_path: str, on_shutdown: Callable[[], None] | None = None
) -> FastAPI:
    """db_path: a SQLite file, or a postgresql:// URL for a team server."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = make_store(db_path)
        await store.open()
        reg = Registry(store, EventHub())
        await reg.start()
        app.state.registry = reg
        log.info("broker ready on 127.0.0.1:%s, db %s", port, store.path)
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
    app.include_router(router)
    app.state.dashboard = dashboard.DashboardAuth(port)
    app.include_router(dashboard.router)

    @app.exception_handler(LockdError)
    async def domain_error(_: Request, exc: LockdError) -> JSONResponse:
        return JSONResponse(exc.to_json(), status_code=exc.http_status)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        """Starlette's own refusals (a body that is not UTF-8 JSON, an unknown
        route, a wrong method) in the broker's error shape, not {"detail": ...}."""
        kind = next((k for k, v in KINDS.items() if v[0] == exc.status_code), "invalid")
        return JSONResponse(
            {"error": kind, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {
                "error": "invalid",
                "message": _describe(list(exc.errors())),
                "detail": {"errors": _jsonable(exc.errors())},
            },
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            {
                "error": "internal",
                "message": f"internal error: {type(exc).__name__}; see the log"
                f" at {config.log_path()}",
            },
            status_code=500,
        )

    app.state.requests = RequestCount()
    app.add_middleware(
        Guard, token=token, port=port, count=app.state.requests, dashboard=app.state.dashboard
    )
    return app


def _jsonable(errors: Any) -> Any:
    import json

    return json.loads(json.dumps(errors, default=str))


def setup_logging(verbose: bool = False) -> None:
    handler = logging.handlers.RotatingFileHandler(
        config.log_path(), maxBytes=5_000_000, backupCount=3
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = [handler]
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


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


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: uvicorn writes a response in pieces, and
    # with Nagle on, keep-alive requests stall ~40 ms on the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((config.HOST, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise LockdError(
                "conflict",
                f"port {port} on {config.HOST} is taken by another program; "
                "choose another with --port or LOCKD_PORT",
            ) from None
        raise
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def serve(port: int | None = None, verbose: bool = False, db: str | None = None) -> int:
    """Run the broker in the foreground until stopped. db: --db, else LOCKD_DB,
    else the SQLite file in LOCKD_HOME (the zero-setup default)."""
    port = port or config.port()
    db = db or os.environ.get("LOCKD_DB", "").strip() or str(config.db_path())
    lock = _take_home_lock()
    sock = _bind(port)
    setup_logging(verbose)
    token = config.ensure_token()
    (config.home() / "broker.json").write_text(f'{{"pid": {os.getpid()}, "port": {port}}}\n')
    server: uvicorn.Server | None = None

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(token, port, db, on_shutdown=stop)
    uv_config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(uv_config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
        (config.home() / "broker.json").unlink(missing_ok=True)
        lock.close()
    return 0
