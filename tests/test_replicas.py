"""Several brokers ("replicas") on one PostgreSQL database, as a team server
runs behind a load balancer: what one replica commits, the others push and
see (LISTEN/NOTIFY wakes them, the database is the truth), and leases work
when a replica dies with kill -9 while holding streams.

Each replica is a real `lockd serve --db postgresql://...` process with its
own LOCKD_HOME, port and memory; the database is tests/pgdb.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockd.client.aio import AsyncClient
from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.testing import LOCKD_ENV, Broker, free_port
from tests.gitutil import git, make_repo, run_git
from tests.mcputil import mcp_session
from tests.pgdb import pg_query
from tests.polling import until, wait_for
from tests.test_dashboard import nudge_kinds, signed_in
from tests.test_hooks import lockd

REPO = "git:example.com/team/app"
LEASE = "3"  # seconds: short, so a dead replica's sessions expire within the test


@pytest.fixture
def replicas(pg: str, tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    pair = []
    for name in ("a", "b"):
        home = tmp_path / f"replica-{name}"
        home.mkdir()
        pair.append(Broker(home, free_port(), db=pg, extra_env={"LOCKD_LEASE_SECONDS": LEASE}))
    for b in pair:
        b.start()
    yield pair[0], pair[1]
    for b in pair:
        b.stop()


def agent(broker: Broker, name: str) -> Client:
    """An agent peer without a pid: only its lease (heartbeats) keeps it alive."""
    return broker.register(name=name, kind="agent", repo_id=REPO)


def on(broker: Broker, peer: Client) -> Client:
    """The same peer (same credential) talking to another replica, as a load
    balancer would send it there."""
    other = broker.client(peer.credential)
    other.peer = peer.peer  # type: ignore[attr-defined]
    return other


def async_on(broker: Broker, peer: Client) -> AsyncClient:
    return AsyncClient(broker.url, token=broker.token, credential=peer.credential)


class Listener:
    """A peer's event stream held on one replica, collecting messages."""

    def __init__(self, api: AsyncClient) -> None:
        self.api = api
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        stream: AsyncIterator[tuple[str, dict[str, Any]]] = self.api.stream()
        async for event, data in stream:
            if event == "hello":
                self.ready.set()
            elif event == "message":
                self.messages.append((time.perf_counter(), data))

    async def texts(self, n: int, timeout: float = 5.0) -> list[str]:
        """The texts pushed so far, once there are `n` or `timeout` has passed
        (the caller's comparison then shows what did arrive)."""
        with contextlib.suppress(AssertionError):
            await until(lambda: len(self.messages) >= n, timeout, step=0.005)
        return [m["text"] for _, m in self.messages]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.api.aclose()


def names(broker: Broker) -> set[str]:
    return {p["name"] for p in broker.client().call(Api.peers())["peers"]}


def lock_patterns(broker: Broker) -> list[str]:
    return sorted(i["pattern"] for i in broker.client().call(Api.locks(REPO))["locks"])


# ---- messages --------------------------------------------------------------------------
async def test_message_sent_through_one_replica_is_pushed_by_the_other(
    replicas: tuple[Broker, Broker],
) -> None:
    a, b = replicas
    alice = agent(a, "alice")
    bob = agent(b, "bob")
    listener = Listener(async_on(b, bob))
    sender = async_on(a, alice)
    try:
        await asyncio.wait_for(listener.ready.wait(), 5)
        sent_at = []
        for n in range(30):
            sent_at.append(time.perf_counter())
            await sender.call(Api.send("bob", f"m{n}"))
            await asyncio.sleep(0.01)  # paced on purpose: each push's latency, not a burst's
        # Every message, once, in the order sent, pushed by the replica bob streams from.
        assert await listener.texts(30) == [f"m{n}" for n in range(30)]
        latencies = [got - sent for sent, (got, _) in zip(sent_at, listener.messages, strict=True)]
        print(f"cross-replica push: median {statistics.median(latencies) * 1000:.2f} ms")
        # Nothing pushed twice: a message sent after them arrives, and still each came once.
        await sender.call(Api.send("bob", "sentinel"))
        assert await listener.texts(31) == [f"m{n}" for n in range(30)] + ["sentinel"]
    finally:
        await listener.close()
        await sender.aclose()


async def test_a_lost_change_feed_reconnects_and_catches_up(
    replicas: tuple[Broker, Broker], pg: str
) -> None:
    """PostgreSQL drops replica B's LISTEN connection: B reconnects, re-reads,
    and pushes what was sent meanwhile; the stream itself never broke."""
    a, b = replicas
    alice = agent(a, "alice")
    bob = agent(b, "bob")
    listener = Listener(async_on(b, bob))
    try:
        await asyncio.wait_for(listener.ready.wait(), 5)
        # Both replicas' feeds are cut; alice's message commits while they are down.
        killed = pg_query(
            pg,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'lockd-feed' AND datname = current_database()",
        )
        assert len(killed) == 2
        alice.call(Api.send("bob", "while the feed was down"))
        assert await listener.texts(1) == ["while the feed was down"]
        alice.call(Api.send("bob", "after"))
        assert await listener.texts(2) == ["while the feed was down", "after"]
    finally:
        await listener.close()


# ---- peers and claims ------------------------------------------------------------------
def test_a_peer_registered_on_one_replica_is_known_to_the_other_at_once(
    replicas: tuple[Broker, Broker],
) -> None:
    a, b = replicas
    alice = agent(a, "alice")
    # At once: no waiting for the notice (the credential is looked up in the database).
    assert on(b, alice).call(Api.whoami())["peer_id"] == alice.peer["peer_id"]  # type: ignore[attr-defined]
    agent(b, "bob")
    wait_for(lambda: names(a) == {"alice", "bob"} == names(b))
    on(b, alice).call(Api.set_summary("refactoring the parser"))
    wait_for(
        lambda: (
            {p["name"]: p["summary"] for p in a.client().call(Api.peers())["peers"]}["alice"]
            == "refactoring the parser"
        )
    )
    on(a, alice).call(Api.goodbye())
    wait_for(lambda: names(b) == {"bob"})


def test_claims_made_on_one_replica_show_and_free_on_the_other(
    replicas: tuple[Broker, Broker], pg: str
) -> None:
    a, b = replicas
    alice, bob = agent(a, "alice"), agent(b, "bob")
    assert alice.call(Api.announce(REPO, ["src/api/"], "refactor"))["granted"]
    wait_for(lambda: lock_patterns(b) == ["/src/api/"])
    ((hit,),) = [p["claims"] for p in b.client().call(Api.check(REPO, ["src/api/db.py"]))["paths"]]
    assert hit["peer_name"] == "alice"
    assert not bob.call(Api.announce(REPO, ["src/api/db.py"], "fix"))["granted"]
    alice.call(Api.release(REPO))
    wait_for(lambda: lock_patterns(b) == [])
    assert bob.call(Api.announce(REPO, ["src/api/db.py"], "fix"))["granted"]
    wait_for(lambda: lock_patterns(a) == ["/src/api/db.py"])
    # A TTL claim expires on both replicas' sweepers: released and recorded once.
    assert alice.call(Api.announce(REPO, ["docs/"], "typo", ttl_seconds=1))["granted"]
    expired = "SELECT count(*) FROM intent_events WHERE event = 'expired'"
    wait_for(lambda: pg_query(pg, expired) == [(1,)], 5)
    # On purpose: both sweepers (one a second each) have run since, and neither shows
    # when it has; still recorded once.
    time.sleep(1.5)
    assert pg_query(pg, expired) == [(1,)]
    assert lock_patterns(a) == lock_patterns(b) == ["/src/api/db.py"]


# ---- a replica dies --------------------------------------------------------------------
async def test_replica_killed_while_holding_streams(
    replicas: tuple[Broker, Broker], pg: str
) -> None:
    """A holds bob's and carol's streams and is killed with kill -9. bob, whose
    session lives on, moves to B (same credential, same claims) and gets what
    was sent meanwhile; carol, gone with A, loses her claims when her lease
    runs out on B, once; nobody B never heard from directly is expired early."""
    a, b = replicas
    alice = agent(b, "alice")
    bob, carol = agent(a, "bob"), agent(a, "carol")
    assert bob.call(Api.announce(REPO, ["src/bob/"], "bob's work"))["granted"]
    assert carol.call(Api.announce(REPO, ["src/carol/"], "carol's work"))["granted"]
    streams = [Listener(async_on(a, p)) for p in (bob, carol)]
    for s in streams:
        await asyncio.wait_for(s.ready.wait(), 5)

    # Heartbeats reach only A for longer than the lease: B must not expire them.
    for _ in range(8):
        for p in (alice, bob, carol):
            await asyncio.to_thread(p.call, Api.heartbeat())
        await asyncio.sleep(0.5)  # on purpose: 8 x 0.5 s outlasts the 3 s lease
    assert lock_patterns(b) == ["/src/bob/", "/src/carol/"]
    assert names(b) == {"alice", "bob", "carol"}

    a.kill9()
    await asyncio.wait([s.task for s in streams], timeout=5)
    for s in streams:  # the streams ended with A, as a broken connection
        assert isinstance(s.task.exception(), LockdError)
        assert s.task.exception().kind == "unavailable"  # type: ignore[union-attr]
    alice.call(Api.send("bob", "sent while bob had no stream"))

    bob_b = async_on(b, bob)
    moved = Listener(bob_b)
    try:
        await asyncio.wait_for(moved.ready.wait(), 5)
        alice.call(Api.send("bob", "sent through B"))
        assert await moved.texts(2) == ["sent while bob had no stream", "sent through B"]

        # bob (and alice) heartbeat through B; carol is silent: her lease (3 s) runs out.
        async def carol_gone() -> bool:
            await bob_b.call(Api.heartbeat())
            await asyncio.to_thread(alice.call, Api.heartbeat())
            return "carol" not in names(b)

        with contextlib.suppress(AssertionError):  # the next line says who is left
            await until(carol_gone, timeout=6, step=0.5)
        assert names(b) == {"alice", "bob"}
        assert lock_patterns(b) == ["/src/bob/"]
        assert await bob_b.call(Api.whoami()) and bob.peer["name"] == "bob"  # type: ignore[attr-defined]
        gone = pg_query(
            pg,
            "SELECT count(*) FROM intent_events WHERE event = 'peer_gone' AND peer_id = %s",
            (carol.peer["peer_id"],),  # type: ignore[attr-defined]
        )
        assert gone == [(1,)]
        alive = pg_query(pg, "SELECT name FROM peers WHERE alive = 1 ORDER BY name")
        assert alive == [("alice",), ("bob",)]
    finally:
        await moved.close()
        for s in streams:
            await s.close()
        with pytest.raises(LockdError):
            a.client().call(Api.health())


def test_status_names_the_replica(replicas: tuple[Broker, Broker]) -> None:
    a, b = replicas
    ids = {x.client().call(Api.status())["replica"] for x in (a, b)}
    assert len(ids) == 2 and all(i.startswith("r-") for i in ids)
    with psycopg.connect(a.db or "", autocommit=True) as conn:
        feeds = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lockd-feed'"
            " AND datname = current_database()"
        ).fetchone()
    assert feeds == (2,)


# ---- a team: two machines, two clones, two replicas ------------------------------------
def test_a_team_on_two_machines_shares_claims_through_two_replicas(
    replicas: tuple[Broker, Broker], tmp_path: Path
) -> None:
    """ann and ben, each with a home of their own (as on two machines), a
    clone of one remote at different paths (ssh URL for one, https for the
    other), a user token each, and a different replica each. What ann claims
    through A, ben's pre-commit hook, asking B, names; in block mode it refuses."""
    a, b = replicas
    tokens = {}
    for user in ("ann", "ben"):
        made = lockd(tmp_path, a.env, "token", "create", user, "--json")
        assert made.returncode == 0, made.stderr
        tokens[user] = json.loads(made.stdout)["token"]
    files = {"src/api/app.py": "a\n", "src/db.py": "d\n"}
    ann_repo = make_repo(tmp_path / "ann-laptop" / "app", files, "git@github.com:team/app.git")
    ben_repo = make_repo(tmp_path / "ben-vm" / "work" / "app", files, "https://github.com/team/app")

    def machine(user: str, replica: Broker) -> dict[str, str]:
        home = tmp_path / f"{user}-home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in LOCKD_ENV}
        env.update(LOCKD_HOME=str(home), LOCKD_URL=replica.url, LOCKD_TOKEN=tokens[user])
        return env

    ann, ben = machine("ann", a), machine("ben", b)
    claimed = lockd(ann_repo, ann, "claim", "src/api/", "--reason", "new auth")
    assert claimed.returncode == 0, claimed.stderr
    assert lockd(ben_repo, ben, "hooks", "install").returncode == 0
    (ben_repo / "src/api/app.py").write_text("ben's change\n")
    git(ben_repo, "add", "-A")
    warned = run_git(ben_repo, ben, "commit", "-q", "-m", "touch api")
    assert warned.returncode == 0, warned.stderr
    assert "src/api/app.py" in warned.stderr and "new auth" in warned.stderr, warned.stderr
    (ben_repo / "src/api/app.py").write_text("again\n")
    git(ben_repo, "add", "-A")
    blocked = run_git(ben_repo, {**ben, "LOCKD_HOOK_MODE": "block"}, "commit", "-q", "-m", "x")
    assert blocked.returncode != 0, blocked.stderr
    # Who holds it, as replica B tells it: ann, as user ann, from her own clone's path.
    listing = json.loads(lockd(ben_repo, ben, "locks", "--json").stdout)
    (held,) = listing["locks"] if isinstance(listing, dict) else listing
    assert held["pattern"] == "/src/api/" and held["reason"] == "new auth"
    peers = b.client().call(Api.peers())["peers"]
    holder = next(p for p in peers if p["peer_id"] == held["peer_id"])
    assert holder["user"] == "ann" and holder["cwd"] == str(ann_repo)
    # The team server goes away: ben's hook says so in one line and never blocks,
    # and nothing starts a broker on ben's machine.
    a.kill9()
    b.kill9()
    (ben_repo / "src/api/app.py").write_text("offline\n")
    git(ben_repo, "add", "-A")
    offline = run_git(ben_repo, {**ben, "LOCKD_HOOK_MODE": "block"}, "commit", "-q", "-m", "y")
    assert offline.returncode == 0, offline.stderr
    assert "not reachable" in offline.stderr and len(offline.stderr.strip().splitlines()) == 1
    assert not (Path(ben["LOCKD_HOME"]) / "broker.json").exists()


async def test_agents_on_two_replicas_talk_and_claim_through_mcp(
    replicas: tuple[Broker, Broker], tmp_path: Path
) -> None:
    """Two real `lockd-mcp` sessions, each on its own "machine" (home, clone,
    user token) and replica: a message sent by one arrives in the other as a
    pushed channel notification, and a claim made by one is what the other's
    check_paths and announce_intent see."""
    a, b = replicas
    files = {"src/api/app.py": "a\n"}
    envs, repos = {}, {}
    for user, replica, url in (
        ("ann", a, "git@github.com:team/app.git"),
        ("ben", b, "https://github.com/team/app.git"),
    ):
        made = lockd(tmp_path, a.env, "token", "create", user, "--json")
        home = tmp_path / f"{user}-home"
        home.mkdir()
        envs[user] = {
            **{k: v for k, v in os.environ.items() if k not in LOCKD_ENV},
            "LOCKD_HOME": str(home),
            "LOCKD_URL": replica.url,
            "LOCKD_TOKEN": json.loads(made.stdout)["token"],
        }
        repos[user] = make_repo(tmp_path / f"{user}-machine" / "app", files, url)
    async with (
        mcp_session(str(repos["ann"]), envs["ann"]) as ann,
        mcp_session(str(repos["ben"]), envs["ben"]) as ben,
    ):
        me_ann, me_ben = await ann.call("whoami"), await ben.call("whoami")
        assert me_ann["repo"] == me_ben["repo"] == "git:github.com/team/app"
        users = {p["peer_id"]: p["user"] for p in b.client().call(Api.peers())["peers"]}
        assert (users[me_ann["peer_id"]], users[me_ben["peer_id"]]) == ("ann", "ben")
        sent = await ann.call("send_message", to=me_ben["name"], message="taking the API layer")
        await until(lambda: len(ben.channel) == 1)
        assert ben.channel[0].content == "taking the API layer"
        assert ben.channel[0].meta["message_id"] == sent["message_id"]
        assert (await ann.call("announce_intent", patterns=["src/api/"], reason="auth"))["granted"]

        async def ben_sees_it() -> bool:
            got = await ben.call("check_paths", paths=["src/api/app.py"])
            return bool(got["paths"][0]["claims"])

        await until(ben_sees_it)  # B learns it through its change feed, within milliseconds
        refused = await ben.call("announce_intent", patterns=["src/api/app.py"], reason="fix")
        assert not refused["granted"] and refused["conflicts"][0]["peer_id"] == me_ann["peer_id"]


def test_a_dashboard_on_one_replica_is_nudged_by_changes_through_the_other(
    replicas: tuple[Broker, Broker],
) -> None:
    a, b = replicas
    http, _ = signed_in(b)
    alice = agent(a, "alice")
    assert "claims" in nudge_kinds(
        http, lambda: alice.call(Api.announce(REPO, ["src/"], "refactor"))
    )
    state = http.get("/dashboard/api/state").json()
    assert [(c["peer_name"], c["pattern"]) for c in state["claims"]] == [("alice", "src/")]
    assert "alice" in {p["name"] for p in state["peers"]}


def test_a_claim_whose_notice_was_lost_still_blocks(
    replicas: tuple[Broker, Broker], pg: str
) -> None:
    """Brokers decide from memory only while the repo's claim version is the
    one memory is exact at. A claim written with its notice lost (here: written
    straight into the database, version bumped, no NOTIFY) must still refuse a
    clashing claim: the version differs, so the broker re-reads the repo."""
    a, b = replicas
    alice, bob = agent(a, "alice"), agent(b, "bob")
    assert alice.call(Api.announce(REPO, ["docs/"], "warm-up"))["granted"]
    wait_for(lambda: lock_patterns(b) == ["docs/"])
    (version,) = pg_query(pg, "SELECT version FROM claim_versions WHERE repo_id = %s", (REPO,))
    assert version == (1,)
    pg_query(
        pg,
        "WITH i AS (INSERT INTO intents (peer_id, repo_id, pattern, mode, reason, since,"
        " notify_when_free) VALUES (%s, %s, '/src/api/', 'exclusive', 'silent', 0, 0)"
        " RETURNING id) UPDATE claim_versions SET version = version + 1 RETURNING version",
        (alice.peer["peer_id"], REPO),  # type: ignore[attr-defined]
    )
    assert "/src/api/" not in lock_patterns(b)  # b's memory never heard of it
    refused = bob.call(Api.announce(REPO, ["src/api/db.py"], "fix"))
    assert not refused["granted"] and refused["conflicts"][0]["reason"] == "silent"
    assert "/src/api/" in lock_patterns(b)  # and memory caught up while deciding
    # Memory is exact again: a claim elsewhere is decided and granted as before.
    tools = bob.call(Api.announce(REPO, ["/Makefile"], "build"))
    assert tools["granted"], tools
    (version,) = pg_query(pg, "SELECT version FROM claim_versions WHERE repo_id = %s", (REPO,))
    assert version == (3,)


def test_a_repo_that_ignores_case_does_so_on_every_replica(
    replicas: tuple[Broker, Broker],
) -> None:
    """The first claim in a repo from a case-insensitive checkout (macOS)
    makes the repo compare paths ignoring case: on the replica that learns
    the repo from a notice too, so it cannot grant `src/foo.py` beside `SRC/Foo.py`."""
    a, b = replicas
    alice, bob = agent(a, "alice"), agent(b, "bob")
    assert alice.call(Api.announce(REPO, ["SRC/Foo.py"], "mac", ignorecase=True))["granted"]
    wait_for(lambda: lock_patterns(b) == ["/SRC/Foo.py"])
    refused = bob.call(Api.announce(REPO, ["src/foo.py"], "linux"))
    assert not refused["granted"] and refused["conflicts"][0]["pattern"] == "/SRC/Foo.py"


def test_a_dead_peer_loses_even_the_claims_its_replica_never_heard_of(
    replicas: tuple[Broker, Broker], pg: str
) -> None:
    """carol's lease runs out; the replica that declares her dead releases
    every claim of hers in the database, also one whose notice it never got
    (written here straight into the database), not only those in its memory."""
    a, b = replicas
    carol = agent(a, "carol")
    assert carol.call(Api.announce(REPO, ["docs/"], "known"))["granted"]
    pg_query(
        pg,
        "INSERT INTO intents (peer_id, repo_id, pattern, mode, reason, since, notify_when_free)"
        " VALUES (%s, %s, '/lib/', 'exclusive', 'unheard of', 0, 0) RETURNING id",
        (carol.peer["peer_id"], REPO),  # type: ignore[attr-defined]
    )
    live = "SELECT count(*) FROM intents WHERE released_at IS NULL"
    assert pg_query(pg, live) == [(2,)]
    wait_for(lambda: pg_query(pg, live) == [(0,)], timeout=8)  # lease 3 s, sweep 1 s
    gone = "SELECT count(*) FROM intent_events WHERE event = 'peer_gone'"
    assert pg_query(pg, gone) == [(2,)]
    assert names(a) == names(b) == set()


# ---- load across replicas (slow) -------------------------------------------------------
@pytest.mark.slow
async def test_messages_under_load_across_replicas_arrive_once(
    replicas: tuple[Broker, Broker],
) -> None:
    """Ten receivers streaming, half from each replica; twenty senders, each
    sending through either replica to any receiver, for LOCKD_LOAD_SECONDS/2
    (10 s in CI). Every send answered is pushed to its recipient exactly once,
    whichever replica took it and whichever holds the stream."""
    seconds = float(os.environ.get("LOCKD_LOAD_SECONDS", "20")) / 2
    pair = list(replicas)

    async def register(b: Broker, name: str) -> AsyncClient:
        anon = AsyncClient(f"http://127.0.0.1:{b.port}", b.token)
        fields = {"cwd": "/load", "repo_id": REPO, "repo_root": "/load", "kind": "person"}
        status, body = await anon.exchange(Api.register(**fields, name=name))
        await anon.aclose()
        assert status == 200, body
        return AsyncClient(f"http://127.0.0.1:{b.port}", b.token, body["credential"])

    receivers = [await register(pair[i % 2], f"r{i}") for i in range(10)]
    got: dict[str, list[str]] = {f"r{i}": [] for i in range(10)}

    async def listen(name: str, c: AsyncClient) -> None:
        async for event, data in c.stream():
            if event == "message":
                got[name].append(data["message_id"])
                await c.exchange(Api.ack([data["message_id"]]))

    listeners = [asyncio.create_task(listen(f"r{i}", c)) for i, c in enumerate(receivers)]
    senders = [await register(pair[i % 2], f"s{i}") for i in range(20)]
    everyone = {f"r{i}" for i in range(10)} | {f"s{i}" for i in range(20)}
    await until(lambda: all(names(b) >= everyone for b in pair))  # each knows every peer
    sent: dict[str, list[str]] = {f"r{i}": [] for i in range(10)}
    stop = time.perf_counter() + seconds

    async def send_loop(k: int, c: AsyncClient) -> None:
        n = 0
        while time.perf_counter() < stop:
            to = f"r{(k + n) % 10}"
            status, body = await c.exchange(Api.send(to, f"{k}-{n}"))
            assert status == 200, body
            sent[to].append(body["message_id"])
            n += 1

    await asyncio.gather(*(send_loop(k, c) for k, c in enumerate(senders)))
    total = sum(len(v) for v in sent.values())
    with contextlib.suppress(AssertionError):  # the comparison below says what is missing
        await until(lambda: sum(len(v) for v in got.values()) >= total, timeout=10, step=0.05)
    # Anything pushed twice would come before a message sent after all of them, through
    # either replica: each receiver's two sentinels arrive, and are then left out.
    sentinels: set[str] = set()
    for to in sent:
        for c in senders[:2]:  # s0 is on the first replica, s1 on the second
            status, body = await c.exchange(Api.send(to, "sentinel"))
            assert status == 200, body
            sentinels.add(body["message_id"])
    await until(lambda: sentinels <= {m for ids in got.values() for m in ids}, timeout=10)
    for name in got:
        got[name] = [m for m in got[name] if m not in sentinels]
    for t in listeners:
        t.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    for c in receivers + senders:
        await c.aclose()
    # Throughput only: senders and receivers share this one process with two
    # brokers and PostgreSQL on two cores, so latencies here would be its own
    # queueing (bench/bench_team.py measures latency, one message at a time).
    print(f"\nacross replicas: {total} messages in {seconds:.0f} s ({total / seconds:.0f}/s)")
    for name in sent:
        assert sorted(got[name]) == sorted(sent[name]), f"{name}: lost or pushed twice"
    assert total > 100


def test_replicas_keep_the_repos_first_case_rule_after_it_empties(
    replicas: tuple[Broker, Broker],
) -> None:
    """The repo's case rule is the database's, set by its first claim ever:
    a replica whose index emptied and then met a claimant with the other
    rule must not decide by it, or the two replicas disagree on overlaps."""
    a, b = replicas
    bob, alice, carol = agent(a, "bob"), agent(a, "alice"), agent(b, "carol")
    assert bob.call(Api.announce(REPO, ["docs/"], "case-sensitive first"))["granted"]
    bob.call(Api.release(REPO))
    wait_for(lambda: lock_patterns(a) == lock_patterns(b) == [])
    assert alice.call(Api.announce(REPO, ["SRC/Foo.py"], "mac", ignorecase=True))["granted"]
    wait_for(lambda: lock_patterns(b) == ["/SRC/Foo.py"])
    carol_got = carol.call(Api.announce(REPO, ["src/foo.py"], "mac too", ignorecase=True))
    assert carol_got["granted"]  # the repo's rule is case-sensitive, on both replicas
    wait_for(lambda: lock_patterns(a) == ["/SRC/Foo.py", "/src/foo.py"])

    def holders(broker: Broker, path: str) -> list[str]:
        (entry,) = broker.client().call(Api.check(REPO, [path]))["paths"]
        return sorted(c["peer_name"] for c in entry["claims"])

    for path in ("SRC/Foo.py", "src/foo.py", "src/FOO.py"):
        assert holders(a, path) == holders(b, path), path
    assert holders(a, "src/FOO.py") == []
