"""Intents through a real broker process: atomic claims raced by separate OS
processes, conflict rules, notices, TTLs, leases of killed processes, force
release, path checks, repo scoping over real git checkouts, and the refusal of
every kind of bad input."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from lockd.client import intents
from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.announce import Announce
from lockd.core.errors import LockdError
from lockd.local.repo import RepoInfo, identify
from lockd.testing import Broker
from tests.agentproc import SESSION
from tests.gitutil import add_worktree, bare_origin, clone, make_repo
from tests.pgdb import db_count
from tests.polling import wait_for

REPO = "git:example.com/org/proj"


# ---- helpers ------------------------------------------------------------------
def announce(
    client: Client,
    patterns: list[str],
    reason: str = "work",
    mode: str = "exclusive",
    repo: str = REPO,
    ttl: float | None = None,
    notify: bool = False,
) -> dict[str, Any]:
    return client.call(Api.announce(repo, patterns, reason, mode, ttl, notify))


def claim(client: Client, info: RepoInfo, pats: list[str], reason: str) -> dict[str, Any]:
    """As the CLI and the MCP tools claim: patterns typed in a checkout."""
    return intents.announce(client, info, Announce(info.repo_id, pats, reason))


def locks(broker: Broker, repo: str = REPO) -> list[dict[str, Any]]:
    return broker.client().call(Api.locks(repo))["locks"]


def pid_of(client: Client) -> str:
    return str(client.peer["peer_id"])  # type: ignore[attr-defined]


def notices(client: Client, event: str) -> list[dict[str, Any]]:
    """Unread messages from lockd itself of one kind (marks the inbox read)."""
    got = client.call(Api.inbox())["messages"]
    return [m for m in got if m["from_id"] == "lockd" and m["meta"].get("event") == event]


def history(broker: Broker, repo: str = REPO) -> list[dict[str, Any]]:
    return broker.client().call(Api.events(repo, 1000))["events"]


def a_whole_sweep(broker: Broker, peer: Client) -> None:
    """Return once the sweeper has run a whole sweep begun after this call: a claim
    made now with a 0.1 s TTL is then recorded expired (each sweep judges the
    peers' liveness first, then expires TTLs)."""
    iid = announce(peer, ["/.sweep-sentinel"], ttl=0.1)["intents"][0]["intent_id"]
    wait_for(
        lambda: any(e["event"] == "expired" and e["intent_id"] == iid for e in history(broker)),
        timeout=4,
    )


# ---- atomicity under real concurrency ----------------------------------------------
# Each racer is its own OS process with its own HTTP connection. It registers,
# then on "go" announces (a private pattern + one that overlaps every other
# racer's) and prints the result; on "release" it drops all of its claims.
RACER = r"""
import json, sys
from lockd.client.api import Api
from lockd.client.sync import Client
url, token, repo, name, pats = sys.argv[1:6]
c = Client(url, token=token)
peer = c.call(Api.register(cwd="/tmp/race", repo_id=repo, repo_root="/tmp/race",
                           kind="person", client="race", name=name))
c.credential = peer["credential"]
print(json.dumps({"peer_id": peer["peer_id"]}), flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "go":
        out = c.call(Api.announce(repo, json.loads(pats), "race " + name))
    elif cmd == "release":
        out = c.call(Api.release(repo))
    else:
        break
    print(json.dumps(out), flush=True)
"""

# Texts that differ but all claim src/ab.py, so every pair overlaps.
RIVALS = [
    "src/a*.py",
    "src/*b.py",
    "/src/**",
    "*.py",
    "src/ab.py",
    "src/?b.py",
    "src/[a-c]b.py",
    "**/ab.py",
]


def start_racer(broker: Broker, i: int) -> subprocess.Popen[str]:
    """Racer i: its own pattern plus RIVALS[i], which overlaps every other rival."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            RACER,
            broker.url,
            broker.token,
            REPO,
            f"racer{i}",
            json.dumps([f"/solo{i}/**", RIVALS[i]]),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=broker.env,
    )


@pytest.fixture
def racers(broker: Broker) -> Iterator[list[subprocess.Popen[str]]]:
    procs = [start_racer(broker, i) for i in range(len(RIVALS))]
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _ask(procs: list[subprocess.Popen[str]], cmd: str) -> list[dict[str, Any]]:
    for p in procs:  # all requests leave before any answer is read
        assert p.stdin is not None
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
    out = []
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line, f"racer died: exit {p.poll()}"
        out.append(json.loads(line))
    return out


def test_racing_processes_never_both_win(
    broker: Broker, racers: list[subprocess.Popen[str]]
) -> None:
    """Eight processes, ten rounds: one winner each round, granted whole, and
    the losers leave nothing behind (their private pattern was free)."""
    ids = []
    for p in racers:
        assert p.stdout is not None
        ids.append(json.loads(p.stdout.readline())["peer_id"])
    rounds = 10
    for n in range(rounds):
        order = racers[n % 8 :] + racers[: n % 8]  # a different head start each round
        results = _ask(order, "go")
        winners = [i for i, r in enumerate(results) if r["granted"]]
        assert len(winners) == 1, f"round {n}: {len(winners)} winners"
        won = results[winners[0]]
        assert len(won["intents"]) == 2  # whole
        for r in results:
            if not r["granted"]:
                assert r["intents"] == [] and r["conflicts"]
        live = locks(broker)
        assert len(live) == 2 and len({lk["peer_id"] for lk in live}) == 1
        assert {lk["intent_id"] for lk in live} == {i["intent_id"] for i in won["intents"]}
        released = _ask(order, "release")
        assert sum(len(r["released"]) for r in released) == 2
        assert locks(broker) == []
    # Refusals wrote no intent rows at all: only the winners' two per round.
    assert db_count(broker, "select count(*) from intents") == 2 * rounds
    assert (
        db_count(broker, "select count(*) from intent_events where event='refused'") == 7 * rounds
    )
    for p in racers:
        assert p.stdin is not None
        p.stdin.write("quit\n")
        p.stdin.flush()
        assert p.wait(10) == 0


def test_multi_pattern_announce_is_all_or_nothing(broker: Broker) -> None:
    """The last of several patterns clashing means none of them is granted."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    announce(alice, ["/docs/guide.md"])
    res = announce(bob, ["/src/**", "tests/", "docs/*.md"])
    assert res["granted"] is False and res["intents"] == []
    assert [c["requested"] for c in res["conflicts"]] == ["/docs/*.md"]
    assert {lk["peer_name"] for lk in locks(broker)} == {"alice"}


# ---- conflict rules -------------------------------------------------------------
MODE_CASES = [
    ("exclusive", "exclusive", True),
    ("exclusive", "shared", True),
    ("shared", "exclusive", True),
    ("shared", "shared", False),
]


def test_modes(broker: Broker) -> None:
    """Shared overlaps only another's exclusive; exclusive overlaps anything."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    for held, wanted, clash in MODE_CASES:
        repo = f"{REPO}-{held}-{wanted}"
        assert announce(alice, ["src/api/"], mode=held, repo=repo)["granted"]
        res = announce(bob, ["src/api/db.py"], mode=wanted, repo=repo)
        assert res["granted"] is (not clash), (held, wanted)
        assert len(locks(broker, repo)) == (1 if clash else 2), (held, wanted)
        if clash:
            assert res["conflicts"][0]["mode"] == held


def test_no_overlap_no_conflict(broker: Broker) -> None:
    """Exactness both ways: disjoint globs are granted side by side."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    assert announce(alice, ["web/**/*.css", "src/*.py"])["granted"]
    assert announce(bob, ["web/**/*.scss", "src/*/x.py", "/src/x.py/"])["granted"]
    assert not announce(bob, ["web/a/b/*.css"])["granted"]


def test_a_peer_never_conflicts_with_itself(broker: Broker) -> None:
    """Overlapping claims of one peer stack: it cannot block its own work."""
    alice = broker.register(name="alice")
    assert announce(alice, ["src/"])["granted"]
    assert announce(alice, ["src/app.py", "*.py"])["granted"]
    assert announce(alice, ["src/app.py"], mode="shared")["granted"]
    assert len(locks(broker)) == 3


def test_reannounce_updates_instead_of_duplicating(broker: Broker) -> None:
    """The same pattern again (in any spelling) changes the one intent in place."""
    alice = broker.register(name="alice")
    first = announce(alice, ["src/api/"], reason="first")["intents"][0]
    again = announce(alice, ["./src//api/"], reason="second", mode="shared", ttl=600)
    second = again["intents"][0]
    assert second["intent_id"] == first["intent_id"]
    assert second["reason"] == "second" and second["mode"] == "shared"
    assert second["expires_at"] == pytest.approx(time.time() + 600, abs=5)
    (only,) = locks(broker)
    assert (only["intent_id"], only["reason"], only["mode"]) == (
        first["intent_id"],
        "second",
        "shared",
    )
    # Now shared: another peer's shared claim passes, an exclusive one does not.
    bob = broker.register(name="bob")
    assert announce(bob, ["src/api/x.py"], mode="shared")["granted"]
    assert not announce(bob, ["src/api/y.py"])["granted"]


# ---- refusals, notices, notify_when_free ------------------------------------------------
def test_refusal_lists_every_conflict_with_holder_details_and_paths(
    broker: Broker, tmp_path: Path
) -> None:
    """Both holders come back in full; the checkout's files both sides claim
    are filled in; each holder hears who wanted its files."""
    repo = make_repo(
        tmp_path / "proj",
        {"src/ab.py": "1\n", "src/ac.py": "2\n", "src/zz.py": "3\n", "docs/x.md": "4\n"},
    )
    info = identify(str(repo))
    alice = broker.register(name="alice", summary="refactoring the a-modules")
    carol = broker.register(name="carol", summary="docs pass")
    bob = broker.register(name="bob")
    before = time.time()
    assert announce(alice, ["src/a*.py"], reason="rename a", repo=info.repo_id)["granted"]
    assert announce(carol, ["/docs/**"], reason="typos", mode="shared", repo=info.repo_id)[
        "granted"
    ]
    res = claim(bob, info, ["src", "*.md"], "big change")
    assert res["granted"] is False and res["intents"] == []
    by_holder = {c["peer_name"]: c for c in res["conflicts"]}
    assert set(by_holder) == {"alice", "carol"}
    a, c = by_holder["alice"], by_holder["carol"]
    assert a["peer_id"] == pid_of(alice) and c["peer_id"] == pid_of(carol)
    assert a["summary"] == "refactoring the a-modules" and c["summary"] == "docs pass"
    assert (a["pattern"], a["mode"], a["reason"]) == ("/src/a*.py", "exclusive", "rename a")
    assert (c["pattern"], c["mode"], c["reason"]) == ("/docs/**", "shared", "typos")
    assert before - 1 <= a["since"] <= time.time()
    assert a["paths"] == ["src/ab.py", "src/ac.py"]  # not src/zz.py: only alice's side
    assert c["paths"] == ["docs/x.md"]
    # Holders are told who wanted what.
    for holder, pattern in ((alice, "/src/a*.py"), (carol, "/docs/**")):
        (told,) = notices(holder, "claim_refused")
        assert "bob" in told["text"] and pattern in told["text"] and "big change" in told["text"]
    assert notices(bob, "claim_refused") == []


def test_notify_when_free_after_the_last_conflicting_claim_goes(broker: Broker) -> None:
    """The watcher is told once nothing blocks it any more, not at the first release; peers that
    did not ask hear nothing."""
    alice = broker.register(name="alice")
    carol = broker.register(name="carol")
    bob = broker.register(name="bob")
    dave = broker.register(name="dave")
    erin = broker.register(name="erin")
    a = announce(alice, ["src/api/"], mode="shared")["intents"][0]["intent_id"]
    c = announce(carol, ["*.py"], mode="shared")["intents"][0]["intent_id"]
    res = announce(bob, ["src/api/app.py"], notify=True)
    assert res["granted"] is False and len(res["conflicts"]) == 2
    assert not announce(dave, ["src/api/db.py"])["granted"]  # did not ask to be told
    # The sentinel: a watcher that only alice blocks, told in the same pass as bob would be.
    assert not announce(erin, ["src/api/NOTES"], notify=True)["granted"]
    alice.call(Api.release(intent_ids=[a]))
    wait_for(lambda: notices(erin, "free"))
    assert notices(bob, "free") == []  # carol still blocks
    carol.call(Api.release(intent_ids=[c]))
    (free,) = notices(bob, "free")
    assert "/src/api/app.py" in free["text"] and "free now" in free["text"]
    assert announce(bob, ["src/api/app.py"])["granted"]
    assert notices(dave, "free") == []


# ---- TTL, leases, force -----------------------------------------------------------
def test_ttl_expires_and_is_recorded(broker: Broker) -> None:
    """A TTL claim goes by itself, is recorded as expired, and wakes watchers."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    short = announce(alice, ["src/"], ttl=1)["intents"][0]
    keep = announce(alice, ["docs/"], ttl=3600)["intents"][0]
    assert short["expires_at"] == pytest.approx(time.time() + 1, abs=1)
    assert not announce(bob, ["src/x.py"], notify=True)["granted"]
    took = wait_for(lambda: len(locks(broker)) == 1, timeout=4)
    assert took >= 0.5  # not dropped at once
    assert [lk["intent_id"] for lk in locks(broker)] == [keep["intent_id"]]
    # The sweeper (each second) releases it for good and records why.
    wait_for(lambda: any(e["event"] == "expired" for e in history(broker)), timeout=3)
    expired = [e for e in history(broker) if e["event"] == "expired"]
    assert [e["intent_id"] for e in expired] == [short["intent_id"]]
    assert expired[0]["peer_id"] == pid_of(alice) and expired[0]["detail"]["pattern"] == "src/"
    wait_for(lambda: notices(bob, "free"), timeout=3)  # the watcher hears it too, just after
    assert announce(bob, ["src/x.py"])["granted"]


def test_a_claim_past_its_ttl_blocks_nobody(broker: Broker) -> None:
    """Between the deadline and the next sweep (up to a second), an expired
    claim must not refuse anyone."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    for n in range(3):  # whatever phase the sweeper is in
        gone_at = announce(alice, [f"gen{n}/"], ttl=1)["intents"][0]["expires_at"]
        assert not announce(bob, [f"gen{n}/x.py"])["granted"]
        # On purpose: to just past the deadline, before the sweeper may have run.
        time.sleep(max(0.0, gone_at - time.time()) + 0.02)
        assert announce(bob, [f"gen{n}/x.py"])["granted"], f"round {n}"


def test_killed_session_releases_its_claims_within_two_seconds(broker: Broker) -> None:
    """kill -9 of a streaming session: stream closed and process gone means its claims go within
    2 s, recorded and announced."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SESSION, broker.url, broker.token, str(broker.port), REPO],
        stdout=subprocess.PIPE,
        text=True,
        env=broker.env,
    )
    try:
        assert proc.stdout is not None
        hello = json.loads(proc.stdout.readline())
        assert hello["granted"]
        bob = broker.register(name="bob")
        assert not announce(bob, ["src/core/x.py"], notify=True)["granted"]
        a_whole_sweep(broker, bob)  # alive and streaming: the sweeper must keep the claims
        assert len(locks(broker)) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        took = wait_for(lambda: locks(broker) == [], timeout=4, step=0.02)
        print(f"claims of the killed session released after {took:.2f} s")
        assert took <= 2.0, f"released after {took:.2f} s"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    gone = [e for e in history(broker) if e["event"] == "peer_gone"]
    assert len(gone) == 2 and {e["peer_id"] for e in gone} == {hello["peer_id"]}
    peers = broker.client().call(Api.peers("machine"))["peers"]
    assert hello["peer_id"] not in {p["peer_id"] for p in peers}
    wait_for(lambda: notices(bob, "free"), timeout=3)  # the sweeper tells watchers just after
    assert announce(bob, ["src/core/x.py"])["granted"]


def test_session_with_a_reused_pid_is_dead(broker: Broker) -> None:
    """A live pid with another start time (a reused pid) does not keep claims."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        start = psutil.Process(sleeper.pid).create_time()
        honest = broker.register(name="honest", kind="agent", pid=sleeper.pid, pid_start=start)
        stale = broker.register(name="stale", kind="agent", pid=sleeper.pid, pid_start=start - 1000)
        announce(honest, ["a/"])
        announce(stale, ["b/"])
        wait_for(lambda: {lk["peer_name"] for lk in locks(broker)} == {"honest"}, timeout=4)
        a_whole_sweep(broker, broker.register(name="timer"))  # one more: the honest one stays
        assert {lk["peer_name"] for lk in locks(broker)} == {"honest"}
    finally:
        sleeper.kill()
        sleeper.wait()
    wait_for(lambda: locks(broker) == [], timeout=4)


def test_release_of_anothers_intent_needs_force(broker: Broker) -> None:
    """Only force releases another's claim; that is recorded with the actor and the holder is
    told."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    iid = announce(alice, ["src/"], reason="mine")["intents"][0]["intent_id"]
    with pytest.raises(LockdError) as err:
        bob.call(Api.release(intent_ids=[iid]))
    assert err.value.kind == "forbidden" and err.value.http_status == 403
    assert "alice" in err.value.message and "{force}" in err.value.detail["next"]
    # Releasing "mine" by pattern never touches another's intent either.
    with pytest.raises(LockdError) as err:
        bob.call(Api.release(REPO, patterns=["src/"]))
    assert err.value.kind == "not_found" and "src/" in err.value.message
    assert [lk["intent_id"] for lk in locks(broker)] == [iid]
    assert not [e for e in history(broker) if e["event"] in ("released", "forced")]

    assert bob.call(Api.release(intent_ids=[iid], force=True))["released"] == [iid]
    assert locks(broker) == []
    (forced,) = [e for e in history(broker) if e["event"] == "forced"]
    assert forced["intent_id"] == iid
    assert (forced["peer_id"], forced["actor_id"]) == (pid_of(alice), pid_of(bob))
    (told,) = notices(alice, "force_released")
    assert "bob" in told["text"] and iid in told["text"]
    with pytest.raises(LockdError) as err:
        bob.call(Api.release(intent_ids=[iid], force=True))
    assert err.value.kind == "not_found" and iid in err.value.message


def test_release_own_by_id_pattern_and_all(broker: Broker) -> None:
    """Each way of naming one's own claims releases exactly those, each recorded."""
    alice = broker.register(name="alice")
    got = announce(alice, ["a/", "b/", "c/", "d/"])["intents"]
    ids = [i["intent_id"] for i in got]
    assert alice.call(Api.release(intent_ids=[ids[0]]))["released"] == [ids[0]]
    assert alice.call(Api.release(REPO, patterns=["b/"]))["released"] == [ids[1]]
    assert sorted(alice.call(Api.release(REPO))["released"]) == sorted(ids[2:])
    assert locks(broker) == []
    released = [e for e in history(broker) if e["event"] == "released"]
    assert sorted(e["intent_id"] for e in released) == sorted(ids)


# ---- check paths --------------------------------------------------------------------
def test_check_paths_names_the_claims_on_each(broker: Broker) -> None:
    """Every path comes back (normalized, in order) with the claims on it and `mine` for the
    viewer."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    assert announce(alice, ["src/api/"], reason="api", mode="shared")["granted"]
    assert announce(alice, ["*.md"], reason="api")["granted"]
    assert announce(bob, ["/src/api/app.py"], reason="fix", mode="shared")["granted"]
    res = alice.call(Api.check(REPO, ["src/api/app.py", "./docs//x.md", "src/other.py"]))
    by_path = {p["path"]: p["claims"] for p in res["paths"]}
    assert list(by_path) == ["src/api/app.py", "docs/x.md", "src/other.py"]
    app = {(c["peer_name"], c["pattern"], c["mode"], c["mine"]) for c in by_path["src/api/app.py"]}
    assert app == {
        ("alice", "/src/api/", "shared", True),
        ("bob", "/src/api/app.py", "shared", False),
    }
    assert [(c["pattern"], c["reason"]) for c in by_path["docs/x.md"]] == [("*.md", "api")]
    assert by_path["src/other.py"] == []
    # `mine` follows the viewer.
    res = broker.client().call(Api.check(REPO, ["src/api/app.py"], viewer="bob"))
    assert {c["peer_name"]: c["mine"] for c in res["paths"][0]["claims"]} == {
        "alice": False,
        "bob": True,
    }
    # Another repo sees none of these.
    assert broker.client().call(Api.check("git:example.com/else", ["src/api/app.py"]))["paths"] == [
        {"path": "src/api/app.py", "claims": [], "activity": []}
    ]


def test_check_takes_a_thousand_paths_and_refuses_more(broker: Broker) -> None:
    """1,000 paths is the documented limit: met in full, and one more is refused by name."""
    alice = broker.register(name="alice")
    announce(alice, ["pkg/m1*.py"])
    paths = [f"pkg/m{i}.py" for i in range(1000)]
    res = alice.call(Api.check(REPO, paths))["paths"]
    assert len(res) == 1000
    claimed = {p["path"] for p in res if p["claims"]}
    assert claimed == {p for p in paths if p.startswith("pkg/m1")}  # m1, m10-19, m100-199
    assert len(claimed) == 111
    with pytest.raises(LockdError) as err:
        alice.call(Api.check(REPO, [*paths, "pkg/one-more.py"]))
    assert err.value.http_status in (413, 422)
    assert "1001" in err.value.message and "1000" in err.value.message


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "", "src/../../x"])
def test_check_refuses_paths_that_are_not_repo_relative(shared_broker: Broker, bad: str) -> None:
    """A path that could not be a file of the repo is an error, not an empty answer."""
    with pytest.raises(LockdError) as err:
        shared_broker.client().call(Api.check(REPO, ["ok.py", bad]))
    assert err.value.kind == "invalid" and repr(bad) in err.value.message


# ---- repo scoping ----------------------------------------------------------------
def test_worktree_and_second_clone_share_claims_unrelated_repo_does_not(
    broker: Broker, tmp_path: Path
) -> None:
    """One repo whichever checkout it is seen from, with the ids the code derives from real git."""
    seed = make_repo(tmp_path / "seed", {"src/app.py": "x\n", "README.md": "r\n"})
    origin = bare_origin(tmp_path / "origin.git", seed)
    one = clone(origin, tmp_path / "one")
    tree = add_worktree(one, tmp_path / "one-feature", "feature")
    two = clone(origin, tmp_path / "two")
    other = make_repo(tmp_path / "other", {"src/app.py": "x\n"})
    local = make_repo(tmp_path / "local", {"src/app.py": "x\n"})  # no origin
    local_tree = add_worktree(local, tmp_path / "local-wt", "wt")

    ids = {name: identify(str(p)) for name, p in [
        ("one", one), ("tree", tree), ("two", two), ("other", other),
        ("local", local), ("local_tree", local_tree),
    ]}  # fmt: skip
    assert ids["one"].repo_id == ids["tree"].repo_id == ids["two"].repo_id
    assert ids["one"].root != ids["tree"].root != ids["two"].root
    assert ids["local"].repo_id == ids["local_tree"].repo_id
    assert len({i.repo_id for i in ids.values()}) == 3

    def peer(name: str) -> Client:
        info = ids[name]
        return broker.register(name=name, cwd=info.root, repo_id=info.repo_id, repo_root=info.root)

    p_one, p_tree, p_two, p_other = peer("one"), peer("tree"), peer("two"), peer("other")
    a = claim(p_one, ids["one"], ["src"], "from clone one")
    # `src` names a directory of the checkout, so it means that tree, anchored.
    assert a["granted"] and a["intents"][0]["pattern"] == "/src/"
    for who, name in ((p_tree, "tree"), (p_two, "two")):
        res = claim(who, ids[name], ["src/app.py"], "me too")
        assert res["granted"] is False
        (c,) = res["conflicts"]
        assert c["peer_name"] == "one" and c["paths"] == ["src/app.py"]
    assert claim(p_other, ids["other"], ["src"], "elsewhere")["granted"]
    # Each checkout lists the shared repo's claim; the unrelated repo only its own.
    seen = {n: {lk["peer_name"] for lk in locks(broker, ids[n].repo_id)} for n in ids}
    assert seen["one"] == seen["tree"] == seen["two"] == {"one"}
    assert seen["other"] == {"other"} and seen["local"] == seen["local_tree"] == set()
    repo_peers = {p["name"] for p in p_tree.call(Api.peers("repo"))["peers"]}
    assert repo_peers == {"one", "two"}
    # A local repo and its worktree: one repo through the common git dir.
    p_local, p_lt = peer("local"), peer("local_tree")
    assert claim(p_local, ids["local"], ["*.py"], "x")["granted"]
    assert not claim(p_lt, ids["local_tree"], ["src/"], "y")["granted"]


def test_absolute_paths_inside_the_checkout_become_repo_relative(
    broker: Broker, tmp_path: Path
) -> None:
    """A path pasted from the editor claims the same tree as the relative one."""
    repo = make_repo(tmp_path / "proj", {"src/api/app.py": "x\n"})
    info = identify(str(repo))
    alice = broker.register(name="alice")
    res = claim(alice, info, [f"{info.root}/src/api"], "abs")
    assert [i["pattern"] for i in res["intents"]] == ["/src/api/"]


# ---- bad input ------------------------------------------------------------------
def _post(broker: Broker, credential: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", broker.port, timeout=5)
    try:
        conn.request(
            "POST",
            "/v1/intents",
            body=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {broker.token}",
                "X-Lockd-Session": credential,
            },
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


BASE = {"repo_id": REPO, "patterns": ["src/ok.py"], "reason": "ok"}


@pytest.mark.parametrize(
    ("change", "status", "needles"),
    [
        ({"patterns": ["src/ok.py", "!src/x.py"]}, 422, ["'!src/x.py'", "negation", "patterns[1]"]),
        ({"patterns": [""]}, 422, ["empty pattern"]),
        ({"patterns": ["   "]}, 422, ["empty pattern"]),
        ({"patterns": ["a" * 513]}, 422, ["'aaaaaaaa", "513", "512"]),
        ({"patterns": ["../etc/passwd"]}, 422, ["'../etc/passwd'", "leaves the repository"]),
        ({"patterns": ["src/../../x"]}, 422, ["'src/../../x'", "leaves the repository"]),
        ({"patterns": ["/"]}, 422, ["'/'", "names no files"]),
        ({"patterns": ["src/[a-"]}, 422, ["src/[a-"]),
        ({"patterns": [f"p{i}/" for i in range(101)]}, 422, ["101 patterns", "100"]),
        ({"patterns": []}, 422, ["patterns"]),
        ({"patterns": "src/"}, 422, ["patterns", "list"]),
        ({"reason": ""}, 422, ["reason is empty"]),
        ({"reason": " \n\t"}, 422, ["reason is empty"]),
        ({"reason": "x" * 1001}, 413, ["reason", "1000"]),
        ({"mode": "greedy"}, 422, ["mode", "'exclusive' or 'shared'"]),
        ({"ttl_seconds": 0}, 422, ["ttl_seconds=0", "more than 0"]),
        ({"ttl_seconds": -5}, 422, ["ttl_seconds=-5"]),
        ({"ttl_seconds": 10**9}, 422, ["ttl_seconds=1000000000"]),
        ({"ttl_seconds": "8h"}, 422, ["ttl_seconds", "number"]),
        ({"repo_id": ""}, 422, ["repo_id"]),
        ({"colour": "red"}, 422, ["colour"]),
    ],
)
def test_bad_announcements_are_refused_and_write_nothing(
    shared_broker: Broker, change: dict[str, Any], status: int, needles: list[str]
) -> None:
    """Each bad input gets a 4xx naming what is wrong, and the database stays untouched:
    the module's broker (conftest), which serves only these refusals, so its database
    must stay free of intents and events throughout."""
    broker = shared_broker
    alice = broker.register()
    got, body = _post(broker, alice.credential or "", {**BASE, **change})
    assert got == status, body
    assert body["error"] in ("invalid", "too_large")
    for needle in needles:
        assert needle in body["message"], (needle, body["message"])
    assert db_count(broker, "select count(*) from intents") == 0
    assert db_count(broker, "select count(*) from intent_events") == 0
    assert db_count(broker, "select count(*) from watches") == 0
    assert locks(broker) == []


def test_announce_needs_a_session(shared_broker: Broker) -> None:
    """The broker token alone does not make anyone a claimant."""
    broker = shared_broker
    got, body = _post(broker, "not-a-credential", BASE)
    assert got in (401, 403) and body["message"]
    with pytest.raises(LockdError) as err:
        broker.client().call(Api.announce(REPO, ["x"], "r"))
    assert err.value.http_status in (401, 403)
    assert locks(broker) == []
