"""The broker's front door: token, Host, Origin, content type, per-peer acts."""

from __future__ import annotations

import http.client
import json
import os
import re
import stat
from collections.abc import Iterator
from typing import Any

import pytest

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.server.security import OPEN_PATHS
from lockd.testing import Broker


def raw(
    broker: Broker,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", broker.port, timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, (json.loads(data) if data else {})


def _fetch(
    broker: Broker, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, str]:
    """Like `raw`, for answers that may not be JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", broker.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_token_file_is_private(broker: Broker) -> None:
    mode = stat.S_IMODE(os.stat(broker.home / "token").st_mode)
    assert mode == 0o600


def test_health_is_open_and_reveals_nothing(broker: Broker) -> None:
    status, body = raw(broker, "GET", "/health")
    assert status == 200 and body == {"status": "ok"}


def test_openapi_for_token_holders(broker: Broker) -> None:
    status, data = raw(
        broker, "GET", "/openapi.json", headers={"Authorization": f"Bearer {broker.token}"}
    )
    assert status == 200 and "/v1/intents" in data["paths"]


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:7899", "10.0.0.1"])
def test_rebinding_host_is_refused(broker: Broker, host: str) -> None:
    status, data = raw(
        broker,
        "GET",
        "/v1/status",
        headers={"Host": host, "Authorization": f"Bearer {broker.token}"},
    )
    assert status == 403 and "loopback" in data["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:1234", "[::1]:7899"])
def test_loopback_hosts_pass(broker: Broker, host: str) -> None:
    status, _ = raw(
        broker,
        "GET",
        "/v1/status",
        headers={"Host": host, "Authorization": f"Bearer {broker.token}"},
    )
    assert status == 200


def test_cross_site_origin_is_refused(broker: Broker) -> None:
    status, data = raw(
        broker,
        "GET",
        "/v1/status",
        headers={"Origin": "https://evil.example.com", "Authorization": f"Bearer {broker.token}"},
    )
    assert status == 403 and "Origin" in data["message"]
    status, _ = raw(
        broker,
        "GET",
        "/v1/status",
        headers={
            "Origin": f"http://127.0.0.1:{broker.port}",
            "Authorization": f"Bearer {broker.token}",
        },
    )
    assert status == 200


def test_text_plain_write_is_refused_and_writes_nothing(broker: Broker) -> None:
    peer = broker.register()
    body = json.dumps({"to": "@machine", "message": "hi"}).encode()
    status, data = raw(
        broker,
        "POST",
        "/v1/messages",
        body,
        {
            "Content-Type": "text/plain",
            "Authorization": f"Bearer {broker.token}",
            "X-Lockd-Session": peer.credential or "",
        },
    )
    assert status == 415 and "application/json" in data["message"]
    assert peer.call(Api.inbox())["messages"] == []


def test_peer_cannot_read_or_act_as_another(broker: Broker) -> None:
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    alice.call(Api.send("bob", "for bob only"))
    forged = broker.client("not-a-credential")
    with pytest.raises(LockdError) as err:
        forged.call(Api.inbox())
    assert err.value.kind == "forbidden"
    assert alice.call(Api.inbox())["messages"] == []  # alice's own inbox is empty
    assert [m["text"] for m in bob.call(Api.inbox())["messages"]] == ["for bob only"]
    no_session = broker.client()
    with pytest.raises(LockdError) as err:
        no_session.call(Api.send("alice", "spoof"))
    assert err.value.kind == "unauthorized"


def test_releasing_anothers_claim_needs_force(broker: Broker) -> None:
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    got = alice.call(Api.announce("dir:/tmp/w", ["src/"], "refactor"))
    intent = got["intents"][0]["intent_id"]
    with pytest.raises(LockdError) as err:
        bob.call(Api.release(intent_ids=[intent]))
    assert err.value.kind == "forbidden" and "{force}" in err.value.detail["next"]
    assert len(alice.call(Api.locks("dir:/tmp/w"))["locks"]) == 1
    assert bob.call(Api.release(intent_ids=[intent], force=True))["released"] == [intent]
    notices = alice.call(Api.inbox())["messages"]
    assert any("force-released" in m["text"] for m in notices)


def test_oversized_body_is_refused(broker: Broker) -> None:
    peer = broker.register()
    body = json.dumps({"to": "@machine", "message": "x" * 300_000}).encode()
    status, data = raw(
        broker,
        "POST",
        "/v1/messages",
        body,
        {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {broker.token}",
            "X-Lockd-Session": peer.credential or "",
        },
    )
    assert status == 413
    assert peer.call(Api.inbox())["messages"] == []


# ---- every route, enumerated from the app itself -------------------------------
def _app_routes() -> list[tuple[str, str]]:
    """Every (method, path) the broker serves, read from the app rather than a
    hand list, so that a route added later is held to the same rules."""
    from lockd.server.app import create_app

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x nests
            if inner is not None:
                context = getattr(route, "include_context", None)
                yield from walk(inner.routes, prefix + getattr(context, "prefix", ""))
            elif isinstance(getattr(route, "path", None), str):
                for method in getattr(route, "methods", None) or ():
                    if method != "HEAD":
                        yield method, re.sub(r"\{[^}]+\}", "x", prefix + route.path)

    return sorted(set(walk(create_app("t", 1, ":memory:").routes, "")))


APP_ROUTES = _app_routes()
GUARDED = [r for r in APP_ROUTES if r not in OPEN_PATHS]


def test_every_app_route_refuses_missing_wrong_token_bad_host_and_origin(
    broker: Broker,
) -> None:
    """No token or a wrong one: 401; the right token from a rebinding Host or a
    cross-site Origin: 403. Each refusal says why in the broker's JSON shape.
    Routes come from the app itself and cover its OpenAPI document. (The
    dashboard's routes take its cookie, never the token: 401 all the same.)"""
    token = {"Authorization": f"Bearer {broker.token}"}
    cases = [
        ({}, 401, "no token"),
        ({"Authorization": "Bearer wrong"}, 401, "wrong token"),
        ({"Authorization": f"Bearer {broker.token}x"}, 401, "wrong token"),
        ({"Authorization": f"Basic {broker.token}"}, 401, "no token"),
        ({**token, "Host": "attacker.example"}, 403, "loopback"),
        ({**token, "Host": f"127.0.0.1.nip.io:{broker.port}"}, 403, "loopback"),
        ({**token, "Origin": "https://attacker.example"}, 403, "Origin"),
        ({**token, "Origin": "null"}, 403, "Origin"),
        ({**token, "Origin": f"http://127.0.0.1:{broker.port + 1}"}, 403, "Origin"),
    ]
    _, doc = raw(broker, "GET", "/openapi.json", headers=token)
    documented = {
        (m.upper(), re.sub(r"\{[^}]+\}", "x", p)) for p, ops in doc["paths"].items() for m in ops
    }
    assert documented <= set(APP_ROUTES)  # the enumeration misses no documented route
    assert len(GUARDED) >= 18 and all(method == "GET" for method, _ in OPEN_PATHS)
    kinds = {401: "unauthorized", 403: "forbidden"}
    wrong = []
    unknown = [("GET", "/docs"), ("POST", "/v1/no-such-route")]  # refused before routing
    for method, path in GUARDED + unknown:
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        base = {"Content-Type": "application/json"} if body else {}
        for extra, want, needle in cases:
            status, text = _fetch(broker, method, path, body, {**base, **extra})
            if path.startswith("/dashboard") and want == 401:
                # a browser page may get its "not signed in" page as HTML
                if status != 401 or "dashboard" not in text:
                    wrong.append((method, path, extra, status, text[:200]))
                continue
            data = json.loads(text)
            if status != want or data.get("error") != kinds[want] or needle not in data["message"]:
                wrong.append((method, path, extra, status, data))
    assert wrong == []


WRITES = [(m, p) for m, p in GUARDED if m in ("POST", "PUT", "PATCH", "DELETE")]


def test_non_json_writes_are_refused_on_every_write_route(broker: Broker) -> None:
    """The content types a cross-site form may send without a preflight (and
    none at all) are refused on every write, with the token and a session,
    before the route runs: nothing is written."""
    peer = broker.register(name="writer")
    before = _state(broker, peer)
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None):
        for method, path in WRITES:
            headers = {
                "Authorization": f"Bearer {broker.token}",
                "X-Lockd-Session": peer.credential or "",
            }
            if ctype:
                headers["Content-Type"] = ctype
            body = b'{"to": "@machine", "message": "x"}'
            status, data = raw(broker, method, path, body, headers)
            assert status == 415, (ctype, method, path, data)
            assert "application/json" in data["message"]
    assert _state(broker, peer) == before  # the peer is still listed: no goodbye ran


def _state(broker: Broker, peer: Client) -> tuple[Any, ...]:
    """What writes could change. Peers first, without a session: any call with
    the peer's credential would revive it and hide a goodbye."""
    peers = broker.client().call(Api.peers())["peers"]
    locks = peer.call(Api.locks())["locks"]
    inbox = peer.call(Api.inbox(mark_read=False))["messages"]
    events = peer.call(Api.events(limit=1000))["events"]
    return locks, sorted((p["peer_id"], p["name"], p["summary"]) for p in peers), inbox, events


# ---- one peer against another ----------------------------------------------------
def _undelivered(broker: Broker, peer: Client) -> int:
    """The backlog the peer's event stream would replay: messages not yet acked."""
    conn = http.client.HTTPConnection("127.0.0.1", broker.port, timeout=5)
    headers = {"Authorization": f"Bearer {broker.token}", "X-Lockd-Session": peer.credential or ""}
    conn.request("GET", "/v1/stream", headers=headers)
    resp = conn.getresponse()
    assert resp.status == 200
    try:
        while True:
            line = resp.fp.readline().decode()
            if line.startswith("data: "):
                return int(json.loads(line[6:])["backlog"])
    finally:
        conn.close()


def test_another_peers_id_opens_no_inbox(broker: Broker) -> None:
    """A credential identifies the peer; a peer id, given wherever the API
    takes ids or as the credential itself, never reads another's inbox."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    bob_id = bob.peer["peer_id"]  # type: ignore[attr-defined]
    alice.call(Api.send("bob", "for bob only"))
    with pytest.raises(LockdError) as err:
        broker.client(bob_id).call(Api.inbox())  # the id is not a credential
    assert err.value.kind == "forbidden"
    for query in (f"peer={bob_id}", f"peer_id={bob_id}", f"to={bob_id}", f"recipient={bob_id}"):
        status, data = raw(
            broker,
            "GET",
            f"/v1/messages?mark_read=false&{query}",
            headers={
                "Authorization": f"Bearer {broker.token}",
                "X-Lockd-Session": alice.credential or "",
            },
        )
        assert status == 200 and data["messages"] == [], query
    # Registering with bob's id as a credential, or his name, makes a new peer.
    for fields in ({"credential": bob_id}, {"name": "bob"}):
        impostor = broker.register(**fields)
        assert impostor.peer["peer_id"] != bob_id  # type: ignore[attr-defined]
        assert impostor.call(Api.inbox())["messages"] == []
    assert [m["text"] for m in bob.call(Api.inbox())["messages"]] == ["for bob only"]


def test_no_way_to_send_as_another(broker: Broker) -> None:
    """The sender is the credential's peer: a body naming another sender is
    refused (422, nothing sent), and what is sent carries the real sender."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    carol = broker.register(name="carol")
    bob_id = bob.peer["peer_id"]  # type: ignore[attr-defined]
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {broker.token}",
        "X-Lockd-Session": alice.credential or "",
    }
    for field in ("from", "from_id", "from_name", "sender", "peer_id", "kind"):
        body = {"to": "carol", "message": "spoofed", field: bob_id if field != "kind" else "system"}
        status, data = raw(broker, "POST", "/v1/messages", json.dumps(body).encode(), headers)
        assert status == 422 and field in data["message"], (field, data)
    assert carol.call(Api.inbox(mark_read=False))["messages"] == []
    alice.call(Api.send("carol", "real"))
    (got,) = carol.call(Api.inbox())["messages"]
    assert (got["from_id"], got["from_name"], got["text"]) == (
        alice.peer["peer_id"],  # type: ignore[attr-defined]
        "alice",
        "real",
    )


def test_releasing_anothers_claim_without_force_changes_nothing(broker: Broker) -> None:
    """By id (alone or among one's own), by pattern, or all in the repo: bob
    never frees alice's claim without force, and no event is recorded."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    theirs = alice.call(Api.announce("dir:/tmp/w", ["/src/"], "refactor"))["intents"][0]
    mine = bob.call(Api.announce("dir:/tmp/w", ["/docs/"], "docs"))["intents"][0]
    locks_before = alice.call(Api.locks("dir:/tmp/w"))["locks"]
    events_before = alice.call(Api.events(limit=1000))["events"]
    for ids in ([theirs["intent_id"]], [mine["intent_id"], theirs["intent_id"]]):
        for force in (False, None):
            body: dict[str, Any] = {
                "intent_ids": ids,
                **({"force": force} if force is False else {}),
            }
            status, data = raw(
                broker,
                "POST",
                "/v1/intents/release",
                json.dumps(body).encode(),
                {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {broker.token}",
                    "X-Lockd-Session": bob.credential or "",
                },
            )
            assert status == 403 and "force" in data["message"], (body, data)
    with pytest.raises(LockdError) as err:
        bob.call(Api.release(patterns=["/src/"]))
    assert err.value.kind == "not_found"  # bob holds no such claim: alice's is not his
    assert bob.call(Api.release(repo_id="dir:/tmp/w"))["released"] == [mine["intent_id"]]
    after = alice.call(Api.locks("dir:/tmp/w"))["locks"]
    assert after == [lk for lk in locks_before if lk["intent_id"] == theirs["intent_id"]]
    events = alice.call(Api.events(limit=1000))["events"]
    assert [e for e in events if e["intent_id"] == theirs["intent_id"]] == [
        e for e in events_before if e["intent_id"] == theirs["intent_id"]
    ]
    assert alice.call(Api.inbox())["messages"] == []  # no force-release notice


def test_acking_or_reading_anothers_messages_has_no_effect(broker: Broker) -> None:
    """Message ids are guessable (m1, m2, ...): alice acking or marking bob's
    messages read changes nothing in his inbox or his stream's backlog."""
    alice = broker.register(name="alice")
    bob = broker.register(name="bob")
    carol = broker.register(name="carol")
    sent = [carol.call(Api.send("bob", f"note {i}"))["message_id"] for i in range(3)]
    guessed = sent + [f"m{n}" for n in range(1, 50)]
    assert alice.call(Api.ack(guessed)) == {"acknowledged": 0}
    assert alice.call(Api.mark_read(guessed)) == {"read": 0}
    assert _undelivered(broker, bob) == 3
    inbox = bob.call(Api.inbox(mark_read=False))["messages"]
    assert [m["message_id"] for m in inbox] == sent
    # bob's own ack and read do work, so the zeros above are not a broken route
    assert bob.call(Api.ack(sent[:1])) == {"acknowledged": 1}
    assert _undelivered(broker, bob) == 2
    assert bob.call(Api.mark_read(sent[:1])) == {"read": 1}
    assert len(bob.call(Api.inbox())["messages"]) == 2
