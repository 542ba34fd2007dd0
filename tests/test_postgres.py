"""The broker on PostgreSQL (`lockd serve --db postgresql://...`), on the real
server at 127.0.0.1:5432: the SQLite suites' behaviour, re-run unchanged
against PostgreSQL, plus racing claims within one broker and across two
brokers sharing one database.

The session creates its own database and drops it at the end; each test
starts from empty tables. Without a server this file FAILS (CI must not pass
silently without PostgreSQL) unless LOCKD_SKIP_POSTGRES=1.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockd.client.api import Api
from lockd.store.schema import PG_MIGRATIONS
from lockd.store.tx import POSTGRES, SQLITE
from lockd.testing import Broker, free_port
from tests.pgdb import pg_count, pg_query

# The SQLite suites' own tests, collected here again: under this module's
# `broker` fixture they run against PostgreSQL: every test of theirs that uses
# the per-test `broker` (the module-scoped `shared_broker` ones share one
# database across tests, so they stay on SQLite).
from tests.test_broker import (  # noqa: F401
    test_a_retried_send_is_stored_and_delivered_once,
    test_bad_sends_are_refused_and_store_nothing,
    test_fifty_concurrent_senders_store_every_message_once,
    test_malformed_json_is_422,
    test_messages_survive_restart_and_keep_order,
    test_names_are_unique_among_live_peers,
    test_register_gives_stable_identity_across_restart,
    test_scopes,
    test_stream_pushes_and_redelivers_unacked,
)
from tests.test_intents import (  # noqa: F401
    REPO,
    RIVALS,
    _ask,
    locks,
    racers,
    start_racer,
    test_a_claim_past_its_ttl_blocks_nobody,
    test_a_peer_never_conflicts_with_itself,
    test_absolute_paths_inside_the_checkout_become_repo_relative,
    test_check_paths_names_the_claims_on_each,
    test_check_takes_a_thousand_paths_and_refuses_more,
    test_killed_session_releases_its_claims_within_two_seconds,
    test_modes,
    test_multi_pattern_announce_is_all_or_nothing,
    test_no_overlap_no_conflict,
    test_notify_when_free_after_the_last_conflicting_claim_goes,
    test_reannounce_updates_instead_of_duplicating,
    test_refusal_lists_every_conflict_with_holder_details_and_paths,
    test_release_of_anothers_intent_needs_force,
    test_release_own_by_id_pattern_and_all,
    test_session_with_a_reused_pid_is_dead,
    test_ttl_expires_and_is_recorded,
    test_worktree_and_second_clone_share_claims_unrelated_repo_does_not,
)


@pytest.fixture
def broker(lockd_home: Path, pg: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """Overrides conftest's: the same real broker, on PostgreSQL."""
    b = Broker(lockd_home, free_port(), db=pg)
    monkeypatch.setenv("LOCKD_PORT", str(b.port))
    b.start()
    yield b
    b.stop()


# ---- the store itself ----------------------------------------------------------------
def test_migrations_recorded_and_no_sqlite_file(broker: Broker, pg: str) -> None:
    """The schema version lives in lockd_schema; nothing is written to SQLite."""
    assert pg_query(pg, "SELECT version FROM lockd_schema") == [(len(PG_MIGRATIONS),)]
    broker.restart()  # a second start finds the schema current: no re-run, one row
    assert pg_query(pg, "SELECT version FROM lockd_schema") == [(len(PG_MIGRATIONS),)]
    assert not (broker.home / "lockd.db").exists()


def test_lockd_db_environment_selects_postgres(lockd_home: Path, pg: str) -> None:
    """LOCKD_DB works like --db (the harness passes --db; here the variable)."""

    class EnvBroker(Broker):
        @property
        def env(self) -> dict[str, str]:
            return {**super().env, "LOCKD_DB": pg}

    b = EnvBroker(lockd_home, free_port())
    b.start()
    try:
        b.register(name="alice")
        assert pg_query(pg, "SELECT name FROM peers") == [("alice",)]
        assert not (lockd_home / "lockd.db").exists()
    finally:
        b.stop()


def test_dialect_rewrites_only_placeholders() -> None:
    sql = "SELECT * FROM t WHERE a=? AND b IN (?,?)"
    assert SQLITE.sql(sql) == sql
    assert POSTGRES.sql(sql) == "SELECT * FROM t WHERE a=%s AND b IN (%s,%s)"


def test_rows_land_in_postgres_with_full_precision_timestamps(broker: Broker, pg: str) -> None:
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    alice.call(Api.send("bob", "hello"))
    assert alice.call(Api.announce(REPO, ["src/"], "work"))["granted"]
    assert pg_count(pg, "SELECT count(*) FROM peers") == 2
    assert pg_query(pg, "SELECT text FROM messages") == [("hello",)]
    ((since,),) = pg_query(pg, "SELECT since FROM intents")
    (lock,) = locks(broker)
    assert since == lock["since"]  # DOUBLE PRECISION: the float round-trips exactly
    assert [m["text"] for m in bob.call(Api.inbox())["messages"]] == ["hello"]


# ---- racing claims -------------------------------------------------------------------
def _race_rounds(procs: list[subprocess.Popen[str]], pg: str, rounds: int) -> None:
    """Each round all racers announce at once: exactly one wins, whole, and the
    database holds exactly its two live intents; then all release."""
    for p in procs:
        assert p.stdout is not None
        json.loads(p.stdout.readline())  # registered
    for n in range(rounds):
        order = procs[n % len(procs) :] + procs[: n % len(procs)]
        results = _ask(order, "go")
        winners = [r for r in results if r["granted"]]
        assert len(winners) == 1, f"round {n}: {len(winners)} winners"
        assert len(winners[0]["intents"]) == 2
        assert all(r["intents"] == [] and r["conflicts"] for r in results if not r["granted"])
        live = pg_query(pg, "SELECT id, peer_id FROM intents WHERE released_at IS NULL ORDER BY id")
        assert len(live) == 2 and len({peer for _, peer in live}) == 1
        assert {f"i{i}" for i, _ in live} == {i["intent_id"] for i in winners[0]["intents"]}
        released = _ask(order, "release")
        assert sum(len(r["released"]) for r in released) == 2
        assert pg_count(pg, "SELECT count(*) FROM intents WHERE released_at IS NULL") == 0
    assert pg_count(pg, "SELECT count(*) FROM intents") == 2 * rounds
    refused = pg_count(pg, "SELECT count(*) FROM intent_events WHERE event='refused'")
    assert refused == (len(procs) - 1) * rounds
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("quit\n")
        p.stdin.flush()
        assert p.wait(10) == 0


def test_racing_processes_never_both_win(
    broker: Broker,
    pg: str,
    racers: list[subprocess.Popen[str]],  # noqa: F811 - the imported fixture, by name
) -> None:
    """tests/test_intents.py's race (eight processes, one broker), on PostgreSQL."""
    _race_rounds(racers, pg, rounds=10)


def test_two_brokers_on_one_database_never_both_grant(
    broker: Broker, pg: str, tmp_path: Path
) -> None:
    """Two brokers (own homes, own ports, own memory) share the database; four
    racers on each. Neither broker's memory knows the other's claims: the grant
    is decided in the write transaction, under the per-database advisory lock."""
    home = tmp_path / "second-home"
    home.mkdir()
    other = Broker(home, free_port(), db=pg)
    other.start()
    procs = [start_racer(broker if i % 2 else other, i) for i in range(len(RIVALS))]
    try:
        _race_rounds(procs, pg, rounds=12)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        other.stop()


def test_claim_made_through_one_broker_blocks_the_other(
    broker: Broker, pg: str, tmp_path: Path
) -> None:
    """Sequential, no race: broker B refuses what broker A granted (B never saw
    it in memory), and grants it once A's holder released it."""
    home = tmp_path / "second-home"
    home.mkdir()
    other = Broker(home, free_port(), db=pg)
    other.start()
    try:
        alice = broker.register(name="alice")
        bob = other.register(name="bob")
        held = alice.call(Api.announce(REPO, ["src/api/"], "refactor"))["intents"][0]
        refused = bob.call(Api.announce(REPO, ["src/api/db.py"], "fix"))
        assert refused["granted"] is False
        (clash,) = refused["conflicts"]
        assert (clash["intent_id"], clash["peer_id"], clash["reason"]) == (
            held["intent_id"],
            alice.peer["peer_id"],  # type: ignore[attr-defined]
            "refactor",
        )
        alice.call(Api.release(REPO))
        assert bob.call(Api.announce(REPO, ["src/api/db.py"], "fix"))["granted"]
        assert not alice.call(Api.announce(REPO, ["src/"], "again"))["granted"]
    finally:
        other.stop()
