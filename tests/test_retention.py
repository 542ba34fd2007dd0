"""Runs for months (issue 15): retention bounds the store, gone peers leave
memory and come back from the database, SQLite gives space back while the
broker runs, and `lockd status` says what is kept."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.server.sse import SentIds
from lockd.testing import Broker, free_port
from tests.polling import wait_for

REPO = "dir:/tmp/ret"
QUICK = {  # records and gone peers kept ~1 s, retention every second, agents gone after 2 s
    "LOCKD_RETENTION_DAYS": "0.00001",
    "LOCKD_PEER_RETENTION_DAYS": "0.00001",
    "LOCKD_NAME_HOLD_SECONDS": "0",
    "LOCKD_RETENTION_EVERY_SECONDS": "1",
    "LOCKD_LEASE_SECONDS": "2",
}


@pytest.fixture
def quick(lockd_home: Path) -> Iterator[Broker]:
    b = Broker(lockd_home, free_port(), extra_env=QUICK)
    b.start()
    yield b
    b.stop()


def kept(broker: Broker) -> dict[str, Any]:
    return broker.client().call(Api.store_status())


def rows(broker: Broker) -> dict[str, int]:
    return kept(broker)["store"]["rows"]


def session_file(home: Path, peer: dict[str, Any], name: str) -> Path:
    """What an MCP session leaves in LOCKD_HOME/sessions (lockd/client/session.py)."""
    folder = home / "sessions"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{name}-1.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"credential": peer["credential"], "peer_id": peer["peer_id"]}, fh)
    return path


def test_released_intents_events_and_gone_peers_are_purged_with_their_session_files(
    quick: Broker,
) -> None:
    alice = quick.register(name="alice")
    bob = quick.register(name="bob")
    stays = quick.register(name="stays")
    for peer, client in (("alice", alice), ("bob", bob), ("stays", stays)):
        client.peer["file"] = session_file(quick.home, client.peer, peer)  # type: ignore[attr-defined]
    assert alice.call(Api.announce(REPO, ["src/"], "work"))["granted"]
    alice.call(Api.release(REPO))
    assert stays.call(Api.announce(REPO, ["docs/"], "held all along"))["granted"]
    stays.call(Api.send("bob", "unread: bob's inbox waits for him"))
    alice.call(Api.goodbye())
    bob.call(Api.goodbye())

    seen: list[dict[str, int]] = []

    def purged() -> bool:
        seen.append(rows(quick))
        return seen[-1]["peers_gone"] == 1 and seen[-1]["intents_released"] == 0

    wait_for(purged, timeout=20, step=0.2)
    left = seen[-1]
    assert left["intents_live"] == 1 and left["peers_live"] == 1  # what is live stays
    assert left["deliveries_unread"] == 1  # bob, gone with a message unread, is kept
    assert not alice.peer["file"].exists()  # type: ignore[attr-defined]
    assert bob.peer["file"].exists() and stays.peer["file"].exists()  # type: ignore[attr-defined]
    last = kept(quick)["retention"]["last_run"]
    assert last is not None and last["at"] > 0
    with pytest.raises(LockdError, match="register again"):
        alice.call(Api.whoami())  # purged: its credential is gone with it
    history = quick.client().call(Api.events(REPO))["events"]
    assert [e["event"] for e in history] == ["granted"]  # the live claim's record stays


def test_a_forgotten_peer_comes_back_from_the_database(quick: Broker, lockd_home: Path) -> None:
    """Gone for a lease, a peer leaves memory; its credential, name and inbox
    still work from the database (kept here: the retention window is long)."""
    b = Broker(lockd_home, free_port(), extra_env={**QUICK, "LOCKD_PEER_RETENTION_DAYS": "1"})
    quick.stop()
    b.start()
    try:
        carol = b.register(name="carol")
        dave = b.register(name="dave")
        carol.call(Api.goodbye())
        wait_for(lambda: kept(b)["memory"]["peers"] == 1, timeout=15, step=0.2)
        dave.call(Api.send("carol", "while you were away"))  # named from the database
        assert carol.call(Api.whoami())["name"] == "carol"  # its credential, from the database
        assert [m["text"] for m in carol.call(Api.inbox())["messages"]] == ["while you were away"]
        assert kept(b)["memory"]["peers"] == 2
    finally:
        b.stop()


def test_a_new_database_vacuums_incrementally_and_an_old_one_is_converted(
    lockd_home: Path,
) -> None:
    old = lockd_home / "old.db"
    with sqlite3.connect(old) as db:  # as lockd before issue 15 made it: auto_vacuum NONE
        db.execute("CREATE TABLE filler (x BLOB)")
        db.execute("INSERT INTO filler VALUES (randomblob(100000))")
    for path in (lockd_home / "lockd.db", old):
        b = Broker(lockd_home, free_port(), db=str(path))
        b.start()
        try:
            assert kept(b)["store"]["bytes"] > 0
        finally:
            b.stop()
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,), path


def test_space_freed_by_retention_goes_back_to_the_filesystem(quick: Broker) -> None:
    alice = quick.register(name="alice")
    reason = "x" * 900
    for n in range(300):
        alice.call(Api.announce(REPO, [f"src/m{n}.py"], reason))
    alice.call(Api.release(REPO))
    full = kept(quick)["store"]["bytes"]

    def shrunk() -> bool:
        now = kept(quick)["store"]
        return now["rows"]["intents_released"] == 0 and now["bytes"] < full * 0.7

    wait_for(shrunk, timeout=20, step=0.2)


def test_status_shows_the_store_the_caches_and_retention(broker: Broker) -> None:
    c: Client = broker.register(name="erin")
    c.call(Api.announce(REPO, ["src/**/*.py"], "caches"))
    report = kept(broker)
    assert report["store"]["path"] == str(broker.home / "lockd.db")
    assert report["store"]["rows"]["intents_live"] == 1
    assert 0 < report["caches"]["bytes"] <= report["caches"]["budget"]
    memory = report["memory"]  # the broker's own process, and SQLite's part of it
    assert 20 * 2**20 < memory["resident_bytes"] < 500 * 2**20
    assert memory["page_cache_cap_bytes"] == 2048 * 1024
    assert 0 < memory["engine_bytes"] < memory["resident_bytes"]
    assert report["retention"]["records_days"] == 3.0
    assert report["retention"]["last_run"] is None or report["retention"]["last_run"]["at"] > 0


def test_lockd_status_says_what_the_broker_keeps(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    from lockd.cli.main import main

    broker.register(name="frank").call(Api.announce(REPO, ["src/"], "status"))
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kept"]["store"]["rows"]["intents_live"] == 1
    assert data["kept"]["memory"]["peers"] == 1
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "store: " in text and "1 intents_live" in text
    assert "pattern caches" in text and "retention: last ran" in text
    assert re.search(
        r"broker \d+\.\d MB resident; SQLite \d+\.\d MB \(page cache up to 2\.1 MB\)", text
    ), text


def test_the_same_rules_on_postgresql(lockd_home: Path, pg: str) -> None:
    b = Broker(lockd_home, free_port(), db=pg, extra_env=QUICK)
    b.start()
    try:
        alice, stays = b.register(name="alice"), b.register(name="stays")
        assert alice.call(Api.announce(REPO, ["src/"], "work"))["granted"]
        alice.call(Api.release(REPO))
        assert stays.call(Api.announce(REPO, ["docs/"], "held"))["granted"]
        alice.call(Api.goodbye())

        def purged() -> bool:
            now = rows(b)
            return now["peers_gone"] == 0 and now["intents_released"] == 0

        wait_for(purged, timeout=20, step=0.2)
        report = kept(b)
        assert report["store"]["rows"]["intents_live"] == 1 and report["store"]["bytes"] > 0
        assert report["retention"]["last_run"]["removed"]["peers"] >= 0
        with pytest.raises(LockdError, match="register again"):
            alice.call(Api.whoami())
    finally:
        b.stop()


def test_a_stream_remembers_a_bounded_window_of_the_ids_it_sent() -> None:
    """A stream open for weeks must not keep every id it ever pushed (the soak's
    RSS growth); it still drops a repeat of anything recent."""
    sent = SentIds(window=3)
    assert [sent.first_time(m) for m in ("m1", "m2", "m1", "m3")] == [True, True, False, True]
    for n in range(4, 10_000):
        assert sent.first_time(f"m{n}")
    assert len(sent._ids) == len(sent._order) == 3  # the window, not 10,000
    assert not sent.first_time("m9999")  # the most recent is still a repeat
    assert sent.first_time("m1")  # long forgotten: the client dedups that


async def test_sqlites_own_memory_stays_under_its_page_cache_cap(tmp_path: Path) -> None:
    """SQLite's memory is outside Python's (tracemalloc, the pattern caches'
    budget): reading a database several times the page cache's size must not
    grow it past the cap the store sets."""
    from lockd.store.sqlite import PAGE_CACHE_KIB, SqliteStore

    store = SqliteStore(tmp_path / "big.db")
    await store.open()
    try:

        def fill(tx: Any) -> None:
            tx.conn.execute("CREATE TABLE filler (x BLOB)")
            tx.conn.executemany(
                "INSERT INTO filler VALUES (randomblob(4000))", [()] * 3000
            )  # 12 MB: six page caches

        await store.write(fill)
        pragma = await store.read(lambda tx: tx.conn.execute("PRAGMA cache_size").fetchone())
        assert tuple(pragma) == (-PAGE_CACHE_KIB,)
        for _ in range(2):
            await store.read(
                lambda tx: tx.conn.execute("SELECT sum(length(x)) FROM filler").fetchone()
            )
        memory = await store.memory()
        assert memory["page_cache_cap_bytes"] == PAGE_CACHE_KIB * 1024
        # The cap, and room for the schema, prepared statements and Python's own connections.
        assert 0 < memory["engine_bytes"] < memory["page_cache_cap_bytes"] + 2 * 2**20, memory
    finally:
        await store.close()


def test_session_files_no_peer_owns_go_once_older_than_the_peers_window(lockd_home: Path) -> None:
    """An agent killed between creating its session file and registering leaves
    it empty; a peer purged while its session held its file leaves one naming
    it. Retention removes both once older than the peers' window (86 s here),
    never a running session's file (flocked), a live peer's, or a young one."""
    import fcntl
    import time

    b = Broker(lockd_home, free_port(), extra_env={**QUICK, "LOCKD_PEER_RETENTION_DAYS": "0.001"})
    b.start()
    try:
        stays = b.register(name="stays")
        folder = lockd_home / "sessions"
        live = session_file(lockd_home, stays.peer, "live")
        gone = session_file(lockd_home, {"credential": "c", "peer_id": "p-purged"}, "gone")
        empty, held, young = (folder / f"{n}-1.json" for n in ("empty", "held", "young"))
        for path in (empty, held, young):
            path.touch(mode=0o600)
        torn = folder / "torn-1.json"  # young, half written: kept, whatever it names
        torn.write_text('{"peer_id": "p-')
        old = time.time() - 1000
        for path in (live, gone, empty, held):
            os.utime(path, (old, old))
        with open(held, "r+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # as a running session holds its file
            wait_for(lambda: not gone.exists() and not empty.exists(), timeout=15, step=0.2)
            ran = kept(b)["retention"]["last_run"]["at"]
            wait_for(lambda: kept(b)["retention"]["last_run"]["at"] > ran, timeout=15, step=0.2)
            assert live.exists() and held.exists() and young.exists() and torn.exists()
    finally:
        b.stop()
