"""Fixtures: real brokers (see lockd.testing). Nothing here mocks the broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lockd.testing import LOCKD_ENV, Broker, free_port
from tests.gitutil import isolate, make_repo

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
def broker(request: pytest.FixtureRequest) -> Broker:
    """A real broker: this test's own (`own_broker`), or the module's one
    (`shared_broker`) in a module that sets `SHARED_BROKER = True`."""
    shared = getattr(request.module, "SHARED_BROKER", False)
    return request.getfixturevalue("shared_broker" if shared else "own_broker")


@pytest.fixture
def own_broker(lockd_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """A broker for this test alone, on this test's LOCKD_HOME (LOCKD_PORT set to it)."""
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


@pytest.fixture
def short_lease_broker(lockd_home: Path) -> Iterator[Broker]:
    """A broker on this test's LOCKD_HOME whose agents are gone after 2 s without
    a heartbeat (LOCKD_LEASE_SECONDS=2; sessions beat every 10 s)."""
    b = Broker(lockd_home, free_port(), extra_env={"LOCKD_LEASE_SECONDS": "2"})
    b.start()
    yield b
    b.stop()


@pytest.fixture
def env(broker: Broker) -> dict[str, str]:
    """The environment a process reaching `broker` runs with (this one's, LOCKD_* pointed at it)."""
    return broker.env


@pytest.fixture
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A real git checkout at tmp_path/proj holding the module's `REPO_FILES`
    (path: text), committed; a README alone if the module names none."""
    return make_repo(tmp_path / "proj", getattr(request.module, "REPO_FILES", None))


@pytest.fixture(autouse=True)
def git_isolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's git ignores the user's config and has an author."""
    isolate(monkeypatch, tmp_path / "git-home")
