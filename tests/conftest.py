"""Fixtures: real brokers (see lockd.testing). Nothing here mocks the broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lockd.testing import LOCKD_ENV, Broker, free_port
from tests.gitutil import isolate

pytest_plugins = ["tests.pgdb"]  # the `pg_url` / `pg` fixtures: a real PostgreSQL database

__all__ = ["Broker", "free_port"]


@pytest.fixture
def lockd_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lockd-home"
    home.mkdir()
    for key in LOCKD_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LOCKD_HOME", str(home))
    return home


@pytest.fixture
def broker(lockd_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    b = Broker(lockd_home, free_port())
    monkeypatch.setenv("LOCKD_PORT", str(b.port))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One real broker for a whole module whose tests each work in their own
    repo (so their own claims): a broker start per test costs most of the time."""
    b = Broker(tmp_path_factory.mktemp("lockd-home"), free_port())
    b.start()
    yield b
    b.stop()


@pytest.fixture(autouse=True)
def git_isolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's git ignores the user's config and has an author."""
    isolate(monkeypatch, tmp_path / "git-home")
