"""`lockd serve` as a process: what it leaves behind after each way of stopping."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from pathlib import Path

import httpx
import pytest
import uvicorn

from lockd.testing import Broker, free_port
from tests.polling import wait_for


@pytest.mark.parametrize(("how", "code"), [("SIGTERM", 0), ("SIGINT", 130), ("lockd stop", 0)])
def test_nothing_stale_after_the_broker_stops(lockd_home: Path, how: str, code: int) -> None:
    """SIGTERM (systemd, `kill`) is a clean stop; Ctrl-C exits 130, as shells expect."""
    broker = Broker(lockd_home, free_port())
    broker.start()
    info = lockd_home / "broker.json"
    assert info.exists()
    assert broker.proc is not None
    if how == "lockd stop":
        from lockd.client.api import Api

        broker.client().call(Api.shutdown())
    else:
        broker.proc.send_signal(getattr(signal, how))
    wait_for(lambda: broker.proc is not None and broker.proc.poll() is not None, timeout=15)
    assert broker.proc.returncode == code, f"exit {broker.proc.returncode} after {how}"
    assert not info.exists(), f"broker.json left behind after {how}"


def test_a_crash_is_logged_once(lockd_home: Path) -> None:
    """Starlette re-raises what the crash handler answered, and uvicorn logged
    it again under uvicorn.error: every traceback was in broker.log twice."""
    from lockd.local import config
    from lockd.server import app as server

    root, uv_error = logging.getLogger(), logging.getLogger("uvicorn.error")
    kept = (list(root.handlers), root.level, list(uv_error.filters))
    server.setup_logging()
    try:
        port = free_port()
        app = server.create_app("t0ken", port, str(lockd_home / "lockd.db"))

        @app.get("/v1/boom")
        async def boom() -> None:
            raise RuntimeError("boom, for the test")

        sock = server._bind(port)
        uv = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
        thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock])))
        thread.start()
        try:
            wait_for(lambda: uv.started, timeout=15)
            resp = httpx.get(
                f"http://127.0.0.1:{port}/v1/boom", headers={"Authorization": "Bearer t0ken"}
            )
            assert resp.status_code == 500 and resp.json()["error"] == "internal"
        finally:
            uv.should_exit = True
            thread.join(15)
            sock.close()
    finally:
        for handler in root.handlers[len(kept[0]) :]:
            handler.close()
        root.handlers, root.level, uv_error.filters = kept
    log = config.log_path().read_text()
    assert "unhandled error on GET /v1/boom" in log
    assert log.count("RuntimeError: boom, for the test") == 1, log


def test_serve_prints_one_ready_line(lockd_home: Path) -> None:
    """A person starting `lockd serve` (or scripts/serve, which runs it) is told, once it
    answers, where, its home and log file, and how to stop it."""
    import os
    import subprocess
    import sys

    from lockd.client.sync import Client

    port = free_port()
    env = {**os.environ, "LOCKD_HOME": str(lockd_home), "LOCKD_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lockd", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the line comes (or the broker exits)
        assert Client(url=f"http://127.0.0.1:{port}").alive()  # ready means it answers
        assert f"ready at http://127.0.0.1:{port}" in line, line
        assert f"home {lockd_home}" in line and f"log {lockd_home}/logs/broker.log" in line
        assert "Ctrl-C" in line and "lockd stop" in line
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert out == ""  # one line, nothing more
    script = (Path(__file__).parent.parent / "scripts" / "serve").read_text()
    assert 'exec .venv/bin/lockd serve "$@"' in script  # scripts/serve prints the same line
