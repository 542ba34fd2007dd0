"""The broker's front door: token, Host, Origin, content type, per-peer acts."""

from __future__ import annotations

import http.client
import json
import os
import stat

import pytest

from lockd.client import Api
from lockd.errors import LockdError
from lockd.testing import Broker

ROUTES = [
    ("GET", "/v1/status"),
    ("POST", "/v1/shutdown"),
    ("POST", "/v1/peers"),
    ("GET", "/v1/peers/me"),
    ("POST", "/v1/peers/me/heartbeat"),
    ("DELETE", "/v1/peers/me"),
    ("PUT", "/v1/peers/me/summary"),
    ("GET", "/v1/peers"),
    ("POST", "/v1/messages"),
    ("GET", "/v1/messages"),
    ("POST", "/v1/messages/ack"),
    ("POST", "/v1/messages/read"),
    ("GET", "/v1/stream"),
    ("POST", "/v1/intents"),
    ("GET", "/v1/intents"),
    ("POST", "/v1/intents/release"),
    ("POST", "/v1/check"),
    ("GET", "/v1/events"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
]


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


def test_token_file_is_private(broker: Broker) -> None:
    mode = stat.S_IMODE(os.stat(broker.home / "token").st_mode)
    assert mode == 0o600


def test_health_is_open_and_reveals_nothing(broker: Broker) -> None:
    status, body = raw(broker, "GET", "/health")
    assert status == 200 and body == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_the_token(broker: Broker, method: str, path: str) -> None:
    body = b"{}" if method in ("POST", "PUT") else None
    headers = {"Content-Type": "application/json"} if body else {}
    status, data = raw(broker, method, path, body, headers)
    assert status == 401, (path, data)
    assert "token" in data["message"]
    headers["Authorization"] = "Bearer wrong-token"
    status, data = raw(broker, method, path, body, headers)
    assert status == 401 and data["message"].startswith("wrong token")


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
    assert err.value.kind == "forbidden" and "force" in err.value.message
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
