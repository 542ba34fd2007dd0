"""Peers and messages through a real broker process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from lockd.client.aio import AsyncClient
from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.testing import Broker, free_port
from tests.pgdb import db_count


def test_register_gives_stable_identity_across_restart(broker: Broker) -> None:
    alice = broker.register(name="alice", cwd="/tmp/a")
    first = alice.peer["peer_id"]  # type: ignore[attr-defined]
    broker.restart()
    again = broker.client().call(
        Api.register(
            cwd="/tmp/a",
            repo_id="dir:/tmp/a",
            repo_root="/tmp/a",
            kind="person",
            credential=alice.credential,
        )
    )
    assert again["peer_id"] == first and again["credential"] == alice.credential


def test_messages_survive_restart_and_keep_order(broker: Broker) -> None:
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    ids = [alice.call(Api.send("bob", f"n{i}"))["message_id"] for i in range(5)]
    broker.restart()
    got = bob.call(Api.inbox())["messages"]
    assert [m["message_id"] for m in got] == ids
    assert [m["text"] for m in got] == [f"n{i}" for i in range(5)]
    assert got[0]["from_name"] == "alice"
    assert bob.call(Api.inbox())["messages"] == []  # read once, not twice


def test_scopes(broker: Broker) -> None:
    a = broker.register(name="a", cwd="/w/one", repo_id="git:example.com/x")
    broker.register(name="b", cwd="/w/one", repo_id="git:example.com/x")
    broker.register(name="c", cwd="/w/two", repo_id="git:example.com/x")
    broker.register(name="d", cwd="/w/three", repo_id="git:example.com/y")

    def names(scope: str) -> set[str]:
        return {p["name"] for p in a.call(Api.peers(scope))["peers"]}

    assert names("directory") == {"b"}
    assert names("repo") == {"b", "c"}
    assert names("machine") == {"b", "c", "d"}
    sent = a.call(Api.send("@repo", "hello repo"))
    assert len(sent["recipients"]) == 2
    with pytest.raises(LockdError) as err:
        a.call(Api.peers("galaxy"))
    assert err.value.kind == "invalid" and "galaxy" in err.value.message


@pytest.mark.parametrize(
    ("scope", "says"),
    [("galaxy", "scope 'galaxy' is not one of: machine, directory, repo"),
     ("repo", "scope 'repo' needs repo=<repo id> (`lockd whoami --json` prints it)"),
     ("directory", "scope 'directory' needs cwd=<directory>")],
)  # fmt: skip
def test_a_scope_without_a_session_says_what_to_add(broker: Broker, scope: str, says: str) -> None:
    """GET /v1/peers with the token alone: an unknown scope is named as unknown (not as
    missing a cwd), and a scope that needs a place says which query parameter gives it."""
    with pytest.raises(LockdError) as err:
        broker.client().call(Api.peers(scope))
    assert err.value.kind == "invalid" and says in err.value.message, err.value.message


def test_names_are_unique_among_live_peers(broker: Broker) -> None:
    a = broker.register(name="agent")
    b = broker.register(name="agent")
    assert a.peer["name"] == "agent" and b.peer["name"] == "agent-2"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"to": "nobody", "message": "hi"}, "no peer"),
        ({"to": "@galaxy", "message": "hi"}, "broadcasts"),
        ({"to": "bob", "message": "   "}, "empty"),
        ({"to": "bob", "message": "x" * (64 * 1024 + 1)}, "limit"),
        ({"to": "bob"}, "message"),
        ({"to": "bob", "message": "hi", "extra": 1}, "extra"),
    ],
)
def test_bad_sends_are_refused_and_store_nothing(broker: Broker, body: dict, needle: str) -> None:
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    from lockd.client.api import Req

    with pytest.raises(LockdError) as err:
        alice.call(Req("POST", "/v1/messages", body))
    assert needle in err.value.message
    assert err.value.kind in ("invalid", "not_found", "too_large")
    assert bob.call(Api.inbox())["messages"] == []
    assert db_count(broker, "select count(*) from messages") == 0


def test_malformed_json_is_422(broker: Broker) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", broker.port)
    conn.request(
        "POST",
        "/v1/peers",
        body=b"{not json",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {broker.token}"},
    )
    resp = conn.getresponse()
    assert resp.status == 422 and b"JSON" in resp.read()


def test_fifty_concurrent_senders_store_every_message_once(broker: Broker) -> None:
    sink = broker.register(name="sink")
    senders = [broker.register(name=f"s{i}") for i in range(50)]
    errors: list[BaseException] = []

    def run(client: Client, i: int) -> None:
        try:
            for n in range(20):
                client.call(Api.send("sink", f"{i}:{n}"))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c, i)) for i, c in enumerate(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    texts: list[str] = []
    while page := sink.call(Api.inbox())["messages"]:  # the inbox pages by 500
        texts += [m["text"] for m in page]
    assert len(texts) == 1000 and len(set(texts)) == 1000
    for i in range(50):  # per sender, in order
        mine = [int(t.split(":")[1]) for t in texts if t.startswith(f"{i}:")]
        assert mine == list(range(20))


async def test_stream_pushes_and_redelivers_unacked(broker: Broker) -> None:
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    api = AsyncClient(broker.url, token=broker.token, credential=bob.credential)
    streaming = asyncio.Event()

    async def first_messages(n: int) -> list[dict]:
        got: list[dict] = []
        async for event, data in api.stream():
            if event == "hello":
                streaming.set()
            elif event == "message":
                got.append(data)
                if len(got) == n:
                    return got
        return got

    task = asyncio.create_task(first_messages(2))
    await asyncio.wait_for(streaming.wait(), 5)  # the messages are pushed, not a backlog
    alice.call(Api.send("bob", "one"))
    alice.call(Api.send("bob", "two"))
    got = await asyncio.wait_for(task, 5)
    assert [m["text"] for m in got] == ["one", "two"]
    await api.call(Api.ack([got[0]["message_id"]]))  # "two" stays unacknowledged
    again = await asyncio.wait_for(first_messages(1), 5)
    assert [m["text"] for m in again] == ["two"]
    await api.aclose()


def test_second_broker_for_same_home_refuses(broker: Broker) -> None:
    other = Broker(broker.home, free_port())
    with pytest.raises(RuntimeError, match="already serves"):
        other.start()


def test_port_taken_is_a_clear_error(lockd_home, tmp_path) -> None:  # noqa: ANN001
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        b = Broker(lockd_home, port)
        with pytest.raises(RuntimeError, match="taken"):
            b.start()


async def test_a_database_newer_than_this_lockd_is_refused(tmp_path: Path) -> None:
    """Migrations run forward only: a schema from a later lockd is never guessed at."""
    from lockd.store.schema import MIGRATIONS
    from lockd.store.sqlite import SqliteStore

    path = tmp_path / "lockd.db"
    fresh = SqliteStore(path)
    await fresh.open()
    await fresh.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(LockdError, match="newer than this lockd knows.*upgrade lockd"):
        await SqliteStore(path).open()


def test_a_retried_send_is_stored_and_delivered_once(broker: Broker) -> None:
    """A client that resends a send (its broker died after reading it, or a
    replica behind a balancer did) sends the same request key: one message."""
    from lockd.client.api import Req

    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    req = Api.send("bob", "exactly once")
    first, again = alice.call(req), alice.call(req)
    assert first["message_id"] == again["message_id"] and again["recipients"] == first["recipients"]
    assert [m["text"] for m in bob.call(Api.inbox())["messages"]] == ["exactly once"]
    assert db_count(broker, "select count(*) from messages") == 1
    # The key is the sender's own: another peer using it sends a message of its own.
    carol = broker.register(name="carol")
    assert carol.call(Req(req.method, req.path, req.body))["message_id"] != first["message_id"]
    with pytest.raises(LockdError, match="request_key"):
        alice.call(Req("POST", "/v1/messages", {"to": "bob", "message": "x", "request_key": "s"}))


def test_a_broker_on_ipv6_loopback_answers_a_bracketed_url(tmp_path: Path) -> None:
    """`lockd serve --host ::1`: clients reach it at http://[::1]:PORT (the Host
    header carries the brackets, which the broker's Host rule accepts)."""
    port = free_port()
    b = Broker(tmp_path, port, serve_args=("--host", "::1"), public_url=f"http://[::1]:{port}")
    b.start()
    try:
        client = Client(f"http://[::1]:{b.port}", token=b.token)
        assert client.call(Api.health())["status"] == "ok"
        assert client.call(Api.status())["pid"] == b.proc.pid  # type: ignore[union-attr]
    finally:
        b.stop()
