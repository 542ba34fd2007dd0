"""`lockd serve` as a process: what it leaves behind after each way of stopping."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

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
