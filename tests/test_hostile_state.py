"""State that users' machines really hand the broker: file names git cannot
decode, a history holding a record written badly, the database deleted under
a running broker, a name whose session is away, a LOCKD_HOME someone made
wide open, a session frozen past its lease. Real brokers, real git commits
through the installed hook, real SQLite files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.local.repo import identify
from lockd.testing import Broker, free_port
from tests.gitutil import git, make_repo
from tests.polling import wait_for

PY = sys.executable
LATIN1_CAFE = b"caf\xe9.txt"  # café.txt as Latin-1: not UTF-8
SHOWN = "caf\\xe9.txt"  # how lockd writes it (lockd/gitcmd.py)


def dashboard(broker: Broker, name: str = "ana") -> httpx.Client:
    """An HTTP client holding a dashboard cookie for a freshly registered person."""
    person = broker.register(name=name)
    ticket = person.call(Api.dashboard_ticket())
    http = httpx.Client(base_url=broker.url, timeout=5)
    assert http.get(ticket["path"]).status_code == 303
    return http


def history(broker: Broker) -> list[dict[str, Any]]:
    """GET /v1/events, which must answer 200 whatever the history holds."""
    resp = httpx.get(
        f"{broker.url}/v1/events",
        headers={"Authorization": f"Bearer {broker.token}"},
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    return list(resp.json()["events"])


def feed(http: httpx.Client) -> list[str]:
    assert http.get("/dashboard").status_code == 200
    resp = http.get("/dashboard/api/state")
    assert resp.status_code == 200, resp.text
    return [e["text"] for e in resp.json()["events"]]


# ---- file names git cannot decode -------------------------------------------------
def test_a_file_name_that_is_not_utf8_is_committed_matched_and_shown(
    broker: Broker, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "proj")
    proc = subprocess.run(
        [PY, "-m", "lockd", "hooks", "install"], cwd=repo, env=broker.env, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
    repo_id = identify(str(repo)).repo_id
    alice = broker.register(cwd=str(repo), repo_id=repo_id, name="alice")
    assert alice.call(Api.announce(repo_id, ["caf*"], "menu rewrite"))["granted"]

    (repo / os.fsdecode(LATIN1_CAFE)).write_bytes(b"plat du jour\n")
    git(repo, "add", "-A")
    commit = subprocess.run(
        ["git", "commit", "-q", "-m", "menu"], cwd=repo, env=broker.env, capture_output=True
    )
    assert commit.returncode == 0, commit.stderr
    err = commit.stderr.decode()
    # The claim covers it, and the hook names it readably.
    assert f"{SHOWN}: claimed by alice with caf*" in err, err
    # git itself agrees on the bytes: the commit holds the Latin-1 name.
    tree = subprocess.run(
        ["git", "ls-tree", "-z", "--name-only", "HEAD"], cwd=repo, capture_output=True
    ).stdout
    assert LATIN1_CAFE in tree.split(b"\0")

    def touched() -> list[dict[str, Any]]:
        return [e for e in history(broker) if e["event"] == "commit_touched"]

    wait_for(touched)
    [event] = touched()
    assert event["detail"]["paths"] == [SHOWN]
    # The holder was told, with the same name.
    inbox = alice.call(Api.inbox())["messages"]
    assert any(SHOWN in m["text"] for m in inbox), inbox
    lines = feed(dashboard(broker))
    assert any(SHOWN in line and "touching claimed files" in line for line in lines), lines

    broker.restart()  # stored as it travelled: still listable after a restart
    assert [e["detail"]["paths"] for e in history(broker) if e["event"] == "commit_touched"] == [
        [SHOWN]
    ]


def test_checked_paths_keep_their_escapes(broker: Broker) -> None:
    """A `\\xNN` escape is part of the name, not a Windows separator."""
    alice = broker.register(name="alice")
    alice.call(Api.announce("dir:/tmp/w", ["caf*", "src/"], "menu"))
    got = alice.call(Api.check("dir:/tmp/w", [SHOWN, "src\\api\\app.py"], None))["paths"]
    assert [p["path"] for p in got] == [SHOWN, "src/api/app.py"]
    assert [[c["pattern"] for c in p["claims"]] for p in got] == [["caf*"], ["src/"]]


# ---- a history that already holds bad records ---------------------------------
def test_bad_records_in_the_history_are_shown_not_fatal(broker: Broker) -> None:
    """Rows as an older broker or another tool left them: a lone surrogate in a
    JSON detail (a refused claim's reason), detail that is not JSON, and text
    that is not UTF-8. The history and the dashboard still answer."""
    broker.register(name="bob")
    broker.stop()
    db = sqlite3.connect(broker.home / "lockd.db")
    now = time.time()
    rows = [
        (
            "refused",
            "dir:/tmp/w",
            '{"patterns": ["/x"], "mode": "exclusive", '
            '"reason": "caf\\udce9 \\ud800", "holders": []}',
        ),  # fmt: skip
        ("granted", "dir:/tmp/w", "{not json"),
        ("commit_touched", "dir:/tmp/w", '{"hook": "pre-commit", "paths": [1, {"a": 2}]}'),
    ]
    with db:
        for event, repo, detail in rows:
            db.execute(
                "INSERT INTO intent_events (at, event, repo_id, detail) VALUES (?,?,?,?)",
                (now, event, repo, detail),
            )
        db.execute(
            "INSERT INTO intent_events (at, event, repo_id, detail)"
            " VALUES (?, 'released', CAST(X'6469723a2f746d702fe9' AS TEXT), '{}')",
            (now,),
        )
    db.close()
    broker.start()

    events = history(broker)
    assert len(events) == 4
    by_kind = {e["event"]: e for e in events}
    assert by_kind["refused"]["detail"]["reason"] == "caf\\xe9 \\ud800"
    assert "unreadable" in by_kind["granted"]["detail"]
    assert by_kind["released"]["repo"] == "dir:/tmp/\\xe9"
    lines = feed(dashboard(broker))
    assert any("caf\\xe9" in line for line in lines), lines
    assert any("cannot read in full" in line for line in lines), lines


def test_a_reason_with_a_lone_surrogate_never_poisons_the_history(broker: Broker) -> None:
    """Sent raw (JSON can carry the escape): refused at the door, or recorded
    and read back readably; the history answers either way, across a restart."""
    holder = broker.register(name="holder")
    holder.call(Api.announce("dir:/tmp/w", ["src/"], "mine"))
    other = broker.register(name="other")
    body = b'{"repo_id": "dir:/tmp/w", "patterns": ["src/a.py"], "reason": "caf\\udce9"}'
    resp = httpx.post(
        f"{broker.url}/v1/intents",
        content=body,
        headers={
            "Authorization": f"Bearer {broker.token}",
            "X-Lockd-Session": other.credential or "",
            "Content-Type": "application/json",
        },
        timeout=5,
    )
    # Whether the door refuses it (422) is the HTTP edge's business; whatever was
    # recorded of it must leave the history readable.
    assert resp.status_code != 200 or not resp.json()["granted"], resp.text
    history(broker)
    broker.restart()
    history(broker)
    feed(dashboard(broker))


# ---- the database deleted or replaced under a running broker ---------------------
@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_lost_database_file_refuses_writes_instead_of_losing_them(
    broker: Broker, how: str
) -> None:
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    alice.call(Api.send("bob", "before"))
    db = broker.home / "lockd.db"
    if how == "deleted":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    else:  # a backup restored over it, as `cp` does it: a new file at the path
        copy = broker.home / "restored.db"
        src = sqlite3.connect(db)
        src.execute(f"VACUUM INTO '{copy}'")
        src.close()
        os.replace(copy, db)

    writes = [
        Api.send("bob", "after"),
        Api.announce("dir:/tmp/w", ["src/"], "after"),
        Api.set_summary("after"),
    ]
    for req in writes:
        with pytest.raises(LockdError) as refused:
            alice.call(req)
        assert refused.value.kind == "unavailable" and refused.value.http_status == 503
        message = refused.value.message
        assert f"{db} was {how}" in message and "lockd stop" in message, message
    with pytest.raises(LockdError):
        broker.client().call(Api.register(cwd="/tmp/n", repo_id="dir:/tmp/n", repo_root="/tmp/n"))
    # Reads still answer: the broker is up and says what is wrong on writes only.
    assert broker.client().call(Api.status())["peers"] == 2
    log = (broker.home / "logs" / "broker.log").read_text()
    assert f"{db} was {how}" in log and "while the broker ran" in log

    broker.restart()  # the next start opens whatever is at the path now
    if how == "replaced":  # the restored copy: what was acknowledged, and nothing after
        texts = [m["text"] for m in bob.call(Api.inbox())["messages"]]
        assert texts == ["before"]
        assert bob.call(Api.locks())["locks"] == []
    fresh = broker.register(name="carol")
    assert fresh.call(Api.set_summary("works again"))["summary"] == "works again"


# ---- a name belongs to its identity while it is away -------------------------------
def _agent(broker: Broker, name: str, credential: str | None = None) -> tuple[Client, Any]:
    """An agent peer whose process is a real child: kill it and the peer is gone."""
    proc = subprocess.Popen(["sleep", "300"])
    fields: dict[str, Any] = {
        "kind": "agent",
        "name": name,
        "pid": proc.pid,
        "pid_start": psutil.Process(proc.pid).create_time(),
    }
    if credential:
        fields["credential"] = credential
    return broker.register(**fields), proc


def _live_names(broker: Broker) -> set[str]:
    return {p["name"] for p in broker.client().call(Api.peers("machine"))["peers"]}


def test_a_gone_peers_name_waits_for_it(broker: Broker) -> None:
    alice, proc = _agent(broker, "alice")
    alice_id = alice.peer["peer_id"]  # type: ignore[attr-defined]
    bob = broker.register(name="bob")
    proc.kill()  # kill -9 of the agent: alice is gone within a second or two
    proc.wait()
    wait_for(lambda: "alice" not in _live_names(broker), timeout=10)

    broker.restart()  # the name is the identity's, not memory's
    newcomer = broker.register(name="alice")
    assert newcomer.peer["name"] == "alice-2"  # type: ignore[attr-defined]
    sent = bob.call(Api.send("alice", "for alice, wherever she is"))
    assert sent["recipients"] == [alice_id] and sent["away"] == [alice_id]
    assert newcomer.call(Api.inbox())["messages"] == []

    back, proc = _agent(broker, "alice", credential=alice.credential)
    try:
        me = back.peer  # type: ignore[attr-defined]
        assert (me["peer_id"], me["name"]) == (alice_id, "alice")
        texts = [m["text"] for m in back.call(Api.inbox())["messages"]]
        assert texts == ["for alice, wherever she is"]
        assert bob.call(Api.send("alice", "welcome back"))["away"] == []
    finally:
        proc.kill()
        proc.wait()


def test_the_name_hold_is_configurable(lockd_home: Path) -> None:
    broker = Broker(lockd_home, free_port(), extra_env={"LOCKD_NAME_HOLD_SECONDS": "0"})
    broker.start()
    try:
        alice, proc = _agent(broker, "alice")
        proc.kill()
        proc.wait()
        wait_for(lambda: "alice" not in _live_names(broker), timeout=10)
        assert broker.register(name="alice").peer["name"] == "alice"  # type: ignore[attr-defined]
    finally:
        broker.stop()
    bad = Broker(lockd_home, free_port(), extra_env={"LOCKD_NAME_HOLD_SECONDS": "soon"})
    with pytest.raises(RuntimeError, match="LOCKD_NAME_HOLD_SECONDS"):
        bad.start()


# ---- LOCKD_HOME and its files are private --------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(home: Path) -> dict[str, int]:
    found = {".": _mode(home)}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = _mode(path)
    return found


@pytest.fixture
def umask_0022() -> Any:
    old = os.umask(0o022)  # the usual umask: files 0644, dirs 0755 unless told
    yield
    os.umask(old)


def test_a_new_home_is_private_under_a_0022_umask(tmp_path: Path, umask_0022: None) -> None:
    home = tmp_path / "state" / "lockd"  # the broker creates it
    broker = Broker(home, free_port())
    broker.start()
    try:
        alice = broker.register(name="alice")
        alice.call(Api.announce("dir:/tmp/w", ["src/"], "files on disk"))
    finally:
        broker.stop()
    modes = _modes(home)
    for name in ("lockd.db", "token", "logs/broker.log"):
        assert name in modes, modes
    wide = {name: oct(m) for name, m in modes.items() if m & 0o077}
    assert wide == {}, wide


def test_a_wide_open_home_is_made_private_and_logged(lockd_home: Path, umask_0022: None) -> None:
    """Made 0755 by someone else, with files left 0644 (a token, a log, a
    session file, a database): the broker narrows all of it and says so."""
    lockd_home.chmod(0o755)
    for name in ("token", "logs/broker.log", "sessions/abc-1.json", "lockd.db"):
        path = lockd_home / name
        path.parent.mkdir(mode=0o755, exist_ok=True)
        path.parent.chmod(0o755)
    (lockd_home / "token").write_text("t" * 43 + "\n")
    (lockd_home / "logs" / "broker.log").write_text("")
    (lockd_home / "sessions" / "abc-1.json").write_text("{}")
    sqlite3.connect(lockd_home / "lockd.db").close()
    for path in lockd_home.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)

    broker = Broker(lockd_home, free_port())
    broker.start()
    try:
        broker.register(name="alice").call(Api.announce("dir:/tmp/w", ["src/"], "db files"))
        wide = {name: oct(m) for name, m in _modes(lockd_home).items() if m & 0o077}
        assert wide == {}, wide
        assert {"lockd.db-wal", "lockd.db-shm"} <= set(_modes(lockd_home))
    finally:
        broker.stop()
    log = (lockd_home / "logs" / "broker.log").read_text()
    assert f"made private: {lockd_home}: mode 755 -> 700" in log, log
    assert f"{lockd_home / 'token'}: mode 644 -> 600" in log


# ---- a session frozen past its lease is told what it lost ------------------------
FROZEN = r"""
import json, os, sys, time
import psutil
from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
url, token = sys.argv[1:3]
c = Client(url, token=token, timeout=2)
me = os.getpid()
peer = c.call(Api.register(cwd="/tmp/f", repo_id="dir:/tmp/f", repo_root="/tmp/f", kind="agent",
                           client="test", name="sleeper", pid=me,
                           pid_start=psutil.Process(me).create_time()))
c.credential = peer["credential"]
got = c.call(Api.announce("dir:/tmp/f", ["src/", "*.lock"], "long refactor"))
print(json.dumps({"peer": peer, "intents": got["intents"]}), flush=True)
while True:
    try:
        print(json.dumps(c.call(Api.heartbeat())), flush=True)
    except LockdError as exc:
        print(json.dumps({"error": exc.message}), flush=True)
    time.sleep(0.2)  # the session's heartbeat pace
"""


def test_a_session_frozen_past_its_lease_is_told_its_claims_went(
    short_lease_broker: Broker,
) -> None:
    broker = short_lease_broker
    session = subprocess.Popen(
        [PY, "-c", FROZEN, broker.url, broker.token],
        env=broker.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert session.stdout is not None
        hello = json.loads(session.stdout.readline())
        ids = sorted(i["intent_id"] for i in hello["intents"])
        first = json.loads(session.stdout.readline())
        assert first["lapsed"] is None  # nothing to tell yet

        os.kill(session.pid, signal.SIGSTOP)  # frozen: alive, silent
        observer = broker.register(name="observer")
        wait_for(lambda: observer.call(Api.locks("dir:/tmp/f"))["locks"] == [], timeout=10)
        taken = observer.call(Api.announce("dir:/tmp/f", ["src/"], "meanwhile"))
        assert taken["granted"]
        broker.restart()  # what it is told survives a restart of the broker
        os.kill(session.pid, signal.SIGCONT)

        answers = []
        while not any(a.get("lapsed") for a in answers):
            answers.append(json.loads(session.stdout.readline()))
        lapsed = answers[-1]["lapsed"]
        assert lapsed["cause"] == "heartbeats stopped"
        assert sorted(r["intent_id"] for r in lapsed["released"]) == ids
        assert {r["pattern"] for r in lapsed["released"]} == {"src/", "*.lock"}
        assert "Announce them again" in lapsed["message"]
        later = json.loads(session.stdout.readline())
        assert later["lapsed"] is None  # told once

        back = broker.client(hello["peer"]["credential"])
        [notice] = [m for m in back.call(Api.inbox())["messages"] if m["from_id"] == "lockd"]
        assert notice["meta"]["event"] == "claims_released"
        assert sorted(notice["meta"]["intent_ids"].split(",")) == ids
        assert "heartbeat" in notice["text"] and "src/" in notice["text"]
        assert all(i in notice["text"] for i in ids)
    finally:
        session.kill()
        session.wait()


def test_a_goodbye_is_not_a_lapse(broker: Broker) -> None:
    """A session that left on purpose and comes back is not told it lost claims."""
    alice = broker.register(name="alice")
    alice.call(Api.announce("dir:/tmp/w", ["src/"], "short job"))
    alice.call(Api.goodbye())
    back = broker.client().call(
        Api.register(cwd="/tmp/w", repo_id="dir:/tmp/w", repo_root="/tmp/w",
                     kind="person", name="alice", credential=alice.credential)
    )  # fmt: skip
    assert back["lapsed"] is None and back["name"] == "alice"
    assert [m for m in alice.call(Api.inbox())["messages"] if m["from_id"] == "lockd"] == []
