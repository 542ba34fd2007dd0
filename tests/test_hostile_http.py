"""The HTTP edge against hostile input, on real brokers (SQLite and
PostgreSQL) over real sockets: a body past the cap, chunked or not, is
refused without being read; a lone surrogate, a NUL, a control character or
a non-ASCII digit in any field of any route gets a 422 naming the field and
writes nothing; Host must be exactly one of the broker's names; a write the
database refuses changes neither memory nor the database."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core import validation
from lockd.local import config
from lockd.server.security import host_refusal
from lockd.testing import Broker, free_port
from tests.pgdb import TABLES

REPO = "dir:/tmp/w"
CAP = config.MAX_BODY_BYTES


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, lockd_home: Path) -> Iterator[Broker]:
    """A real broker on either engine (PostgreSQL: the session's test database)."""
    db = request.getfixturevalue("pg") if request.param == "postgres" else None
    broker = Broker(lockd_home, free_port(), db=db)
    broker.start()
    yield broker
    broker.stop()


# ---- helpers ------------------------------------------------------------------------
def call(
    broker: Broker,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", broker.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def raw_exchange(broker: Broker, head: bytes, timeout: float = 10) -> bytes:
    """Send these exact bytes and read the answer until the broker closes."""
    with socket.create_connection(("127.0.0.1", broker.port), timeout=timeout) as sock:
        sock.sendall(head)
        return _read_until_closed(sock, stop_after_one=True)


def _read_until_closed(sock: socket.socket, stop_after_one: bool = False) -> bytes:
    data = b""
    try:
        while True:
            if stop_after_one and _complete(data):
                return data
            piece = sock.recv(65536)
            if not piece:
                return data
            data += piece
    except ConnectionResetError:  # the broker stopped reading: what came first counts
        return data


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse_answer(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def db_rows(broker: Broker) -> dict[str, list[str]]:
    """Every row of every table, on either engine, but peers' last_seen (which
    each authenticated request moves on purpose)."""
    out = {}
    tables = [t.strip() for t in TABLES.split(",")]
    if broker.db:
        with psycopg.connect(broker.db, autocommit=True) as conn:
            for table in tables:
                cur = conn.execute(f"SELECT * FROM {table}")
                cols = [d.name for d in cur.description or ()]
                out[table] = _rows(cols, cur.fetchall())
        return out
    db = sqlite3.connect(f"file:{broker.home / 'lockd.db'}?mode=ro", uri=True)
    try:
        for table in tables:
            cur = db.execute(f"SELECT * FROM {table}")
            cols = [d[0] for d in cur.description]
            out[table] = _rows(cols, cur.fetchall())
    finally:
        db.close()
    return out


def _rows(cols: list[str], rows: list[Any]) -> list[str]:
    return sorted(
        repr({c: v for c, v in zip(cols, row, strict=True) if c != "last_seen"}) for row in rows
    )


def broker_log(broker: Broker) -> str:
    return "\n".join(p.read_text() for p in (broker.home / "logs").glob("*.log"))


# ---- bodies: counted as they arrive -----------------------------------------------------
def _pump(sock: socket.socket, total: int, chunked: bool, sent: list[int]) -> None:
    """Send up to `total` body bytes until the broker stops taking them."""
    piece = b"x" * 65536
    try:
        while sent[0] < total:
            data = piece[: total - sent[0]]
            sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            sent[0] += len(data)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # refused and closed: the point


def _huge_body(broker: Broker, who: Client, chunked: bool, total: int) -> tuple[int, bytes, int]:
    """A POST /v1/messages whose body is `total` bytes: (status, answer body,
    bytes the broker took before it stopped reading)."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{broker.port}\r\n"
        f"Authorization: Bearer {broker.token}\r\nX-Lockd-Session: {who.credential}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    sent = [0]
    with socket.create_connection(("127.0.0.1", broker.port), timeout=20) as sock:
        sock.sendall(head.encode())
        pump = threading.Thread(target=_pump, args=(sock, total, chunked, sent))
        pump.start()
        answer = _read_until_closed(sock)
        pump.join(20)
        assert not pump.is_alive(), "the broker kept reading"
    status, headers, body = parse_answer(answer)
    assert headers.get("connection") == "close"
    return status, body, sent[0]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_50_mib_body_is_refused_unread_with_a_short_413(
    shared_broker: Broker, chunked: bool
) -> None:
    """Before: a chunked 50 MiB body was read and parsed (RSS 62 -> 237 MB) and
    the 422 echoed all of it. Now the shared_broker stops at the cap: 413, a short
    JSON answer, the connection closed, its memory about where it was."""
    alice = shared_broker.register(name="alice")
    bob = shared_broker.register(name="bob")
    proc = psutil.Process(shared_broker.proc.pid)  # type: ignore[union-attr]
    rss_before = proc.memory_info().rss
    for _ in range(3):
        status, body, taken = _huge_body(shared_broker, alice, chunked, 50 << 20)
        assert status == 413, body[:300]
        assert len(body) < 200, body
        answer = json.loads(body)
        assert answer["error"] == "too_large" and "256 KiB" in answer["message"]
        assert taken < 32 << 20  # what the kernels' buffers hold, not the whole body
    growth = proc.memory_info().rss - rss_before
    print(f"\nbroker RSS {rss_before >> 20} MiB, after 3 x 50 MiB bodies +{growth >> 10} KiB")
    assert growth < 20 << 20
    assert bob.call(Api.inbox())["messages"] == []  # nothing was sent
    assert alice.call(Api.whoami())["peer_id"] == alice.peer["peer_id"]  # type: ignore[attr-defined]


def test_a_chunked_body_under_the_cap_is_served(shared_broker: Broker) -> None:
    alice = shared_broker.register(name="alice")
    bob = shared_broker.register(name="bob")
    payload = json.dumps({"to": bob.peer["peer_id"], "message": "in pieces"}).encode()  # type: ignore[attr-defined]
    pieces = b"".join(
        b"%x\r\n%s\r\n" % (len(payload[i : i + 5]), payload[i : i + 5])
        for i in range(0, len(payload), 5)
    )
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Bearer {shared_broker.token}\r\nX-Lockd-Session: {alice.credential}\r\n"
        f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    status, _, body = parse_answer(raw_exchange(shared_broker, head + pieces + b"0\r\n\r\n"))
    assert status == 200, body
    assert [m["text"] for m in bob.call(Api.inbox())["messages"]] == ["in pieces"]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_the_cap_is_exact(shared_broker: Broker, chunked: bool) -> None:
    """A body of exactly MAX_BODY_BYTES is read; one byte more is refused."""
    token = {"Authorization": f"Bearer {shared_broker.token}", "Content-Type": "application/json"}
    start = json.dumps({"repo_id": REPO, "paths": ["src/a.py"]}).encode()
    for size, want in ((CAP, 200), (CAP + 1, 413)):
        body = start + b" " * (size - len(start))
        if chunked:
            framed = b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + 10_000]), body[i : i + 10_000])
                for i in range(0, len(body), 10_000)
            )
            head = "".join(f"{k}: {v}\r\n" for k, v in token.items())
            data = (
                (
                    f"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
                    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                ).encode()
                + framed
                + b"0\r\n\r\n"
            )
            status, _, answer = parse_answer(raw_exchange(shared_broker, data))
        else:
            status, answer = call(shared_broker, "POST", "/v1/check", body, token)
        assert status == want, (size, answer[:200])


def test_refusals_quote_only_a_short_excerpt_of_the_input(shared_broker: Broker) -> None:
    """Bodies just under the cap, wrong in ways that quote input: every
    answer stays short, whatever part of the input it names."""
    alice = shared_broker.register(name="alice")
    headers = {
        "Authorization": f"Bearer {shared_broker.token}",
        "X-Lockd-Session": alice.credential or "",
        "Content-Type": "application/json",
    }
    big = "y" * 200_000
    cases = [
        ("PUT", "/v1/peers/me/summary", json.dumps(big)),  # not an object at all
        ("PUT", "/v1/peers/me/summary", json.dumps({"summary": big + "\x00"})),
        ("PUT", "/v1/peers/me/summary", json.dumps({"summary": big})),  # too long
        ("PUT", "/v1/peers/me/summary", json.dumps({"summary": "x", big: 1})),  # unknown key
        ("POST", "/v1/check", json.dumps({"repo_id": REPO, "paths": ["../" + big]})),
        ("POST", "/v1/messages/ack", json.dumps({"message_ids": ["m\u00b2"] * 9000})),
        ("POST", "/v1/intents", json.dumps({"repo_id": REPO, "patterns": [big], "reason": "r"})),
        ("POST", "/v1/messages", json.dumps({"to": big[:256], "message": big})),
        ("POST", "/v1/messages", '{"to": "bob", "message": "' + big),  # broken JSON
    ]
    for method, path, body in cases:
        data = body.encode()
        assert len(data) < CAP
        status, answer = call(shared_broker, method, path, data, headers)
        assert 400 <= status < 500, (path, status, answer[:300])
        assert len(answer) < 4000, (path, len(answer), answer[:300])
        assert json.loads(answer)["message"]


# ---- strings and ids: every field of every route ----------------------------------------
# Each string field's kind, from lockd/validation.py (the table the MCP tools
# check against too): "line", "text", "path", or "id:<prefix>". A field the
# broker documents that the table lacks fails the sweep.
KINDS = {
    **validation.FIELD_KINDS,
    **{name: f"id:{prefix}" for name, prefix in validation.ID_PREFIXES.items()},
}
# Fields whose value is a fixed word or a file name looked up, not stored.
CHOICES = {"kind", "mode", "hook"}
SURROGATE, NUL = "a\ud800b", "a\x00b"
HOSTILE = {  # per kind: values that must be refused (422, the field named)
    "path": [SURROGATE, NUL, "\udcff"],
    "line": [SURROGATE, NUL, "a\x1bb", "a\nb", "a\u2028b", "\x7f"],
    "text": [SURROGATE, NUL, "a\x1b[2Jb", "\x85"],
    "id:m": ["m\u00b2", "m\u0663", "1" + "0" * 29, "m-1", "m1\x00", SURROGATE, "m", "m1.0"],
    "id:i": ["i\u00b2", "i\u0663", "i" + "9" * 30, "i-1", "i1\x00", SURROGATE, "", "i 1"],
}


@dataclass
class Field:
    method: str
    path: str
    where: str  # "body", "query" or "path"
    name: str
    is_list: bool = False


def _is_string(schema: dict[str, Any]) -> tuple[bool, bool]:
    """(a string, a list of strings) for an OpenAPI schema."""
    options = schema.get("anyOf", [schema])
    for option in options:
        if option.get("type") == "string" and "enum" not in option and "const" not in option:
            return True, False
        if option.get("type") == "array" and option.get("items", {}).get("type") == "string":
            return True, True
    return False, False


# The dashboard's routes are left out of the OpenAPI document: its fields by hand.
DASHBOARD_FIELDS = [
    Field("POST", "/dashboard/api/release", "body", "intent_id"),
    Field("POST", "/dashboard/api/send", "body", "to"),
    Field("POST", "/dashboard/api/send", "body", "message"),
    Field("GET", "/dashboard", "query", "ticket"),
]


def documented_fields(doc: dict[str, Any]) -> list[Field]:
    """Every string (or list of strings) a request can carry, from the
    broker's own OpenAPI document: bodies, query strings, path parameters;
    and the dashboard's."""
    fields = list(DASHBOARD_FIELDS)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                if param["in"] in ("query", "path") and _is_string(param["schema"])[0]:
                    fields.append(Field(method.upper(), path, param["in"], param["name"]))
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
            for name, prop in doc["components"]["schemas"][ref]["properties"].items():
                found, is_list = _is_string(prop)
                if found:
                    fields.append(Field(method.upper(), path, "body", name, is_list))
    return fields


@dataclass
class World:
    """Peers, a claim, a message, a dashboard cookie: something to damage."""

    broker: Broker
    alice: Client
    bob: Client
    cookie: str
    intent_id: str
    message_id: str

    def headers(self, field: Field) -> dict[str, str]:
        if field.path.startswith("/dashboard"):
            return {"Cookie": self.cookie, "X-Lockd-Dashboard": "1"}
        return {
            "Authorization": f"Bearer {self.broker.token}",
            "X-Lockd-Session": self.alice.credential or "",
        }

    def base_body(self, field: Field) -> dict[str, Any]:
        """A valid body for the field's route, to carry one hostile value."""
        bodies: dict[tuple[str, str], dict[str, Any]] = {
            ("POST", "/v1/peers"): {
                "cwd": "/tmp/x",
                "repo_id": REPO,
                "repo_root": "/tmp/x",
                "client": "test",
                "kind": "person",
                "name": "newcomer",
                "summary": "s",
                "host": "h",
                "credential": "c" * 32,
            },
            ("PUT", "/v1/peers/me/summary"): {"summary": "fine"},
            ("POST", "/v1/messages"): {"to": "bob", "message": "hi", "request_key": "k" * 12},
            ("POST", "/v1/messages/ack"): {"message_ids": [self.message_id]},
            ("POST", "/v1/messages/read"): {"message_ids": [self.message_id]},
            ("POST", "/v1/intents"): {"repo_id": REPO, "patterns": ["docs/"], "reason": "r"},
            ("POST", "/v1/intents/release"): {
                "repo_id": REPO,
                "intent_ids": [self.intent_id],
                "patterns": ["src/"],
            },
            ("POST", "/v1/check"): {"repo_id": REPO, "paths": ["src/a.py"], "viewer": "bob"},
            ("POST", "/v1/repos"): {"repo_id": REPO, "repo_keys": ["gitdir:/tmp/x/.git"]},
            ("POST", "/v1/activity"): {"edited": ["src/a.py"]},
            ("POST", "/v1/forecast"): {"repo_id": REPO, "verdicts": []},
            ("POST", "/v1/notices/commit"): {
                "repo_id": REPO,
                "intent_ids": [self.intent_id],
                "paths": ["src/a.py"],
                "hook": "pre-commit",
                "committer": "bob",
            },
            ("POST", "/v1/tokens"): {"name": "carol"},
            ("POST", "/dashboard/api/release"): {"intent_id": self.intent_id},
            ("POST", "/dashboard/api/send"): {"to": "bob", "message": "hi"},
        }
        return dict(bodies[field.method, field.path])

    def send(self, field: Field, value: str) -> tuple[int, bytes]:
        headers = self.headers(field)
        target = field.path
        body = None
        if field.where == "body":
            data = self.base_body(field)
            data[field.name] = [value] if field.is_list else value
            body = json.dumps(data).encode()  # ASCII: a surrogate travels as \ud800
            headers["Content-Type"] = "application/json"
        elif field.where == "query":
            target += "?" + urllib.parse.urlencode(
                {field.name: value}, encoding="utf-8", errors="surrogatepass"
            )
        else:
            quoted = urllib.parse.quote(value, safe="", errors="surrogatepass")
            target = target.replace("{" + field.name + "}", quoted)
        return call(self.broker, field.method, target, body, headers)

    def state(self) -> tuple[Any, ...]:
        """The database's rows and what memory shows: peers, claims, inboxes."""
        anyone = self.broker.client()
        peers = sorted(
            (p["peer_id"], p["name"], p["summary"], p["cwd"], p["repo"])
            for p in anyone.call(Api.peers())["peers"]
        )
        locks = anyone.call(Api.locks())["locks"]
        inboxes = [c.call(Api.inbox(mark_read=False))["messages"] for c in (self.alice, self.bob)]
        return db_rows(self.broker), peers, locks, inboxes


def make_world(broker: Broker) -> World:
    alice = broker.register(name="alice", summary="hostile tests")
    bob = broker.register(name="bob")
    intent = alice.call(Api.announce(REPO, ["src/"], "held"))["intents"][0]["intent_id"]
    message = bob.call(Api.send("alice", "hello"))["message_id"]
    ticket = alice.call(Api.dashboard_ticket())["path"]
    conn = http.client.HTTPConnection("127.0.0.1", broker.port, timeout=5)
    conn.request("GET", ticket)
    resp = conn.getresponse()
    cookie = resp.getheader("set-cookie", "").split(";")[0]
    conn.close()
    assert resp.status == 303 and cookie
    return World(broker, alice, bob, cookie, intent, message)


def _expect_refused(world: World, field: Field, value: str, before: tuple[Any, ...]) -> None:
    status, answer = world.send(field, value)
    what = f"{field.method} {field.path} {field.where}.{field.name}={value!r}"
    assert status == 422, (what, status, answer[:300])
    body = json.loads(answer)
    assert body["error"] == "invalid" and field.name in body["message"], (what, body)
    assert len(answer) < 4000, what
    assert world.state() == before, f"{what} was refused but changed something"


def test_bad_strings_and_ids_in_every_field_are_refused_and_write_nothing(engine: Broker) -> None:
    """Every string field the OpenAPI document lists, in bodies, query strings
    and paths: lone surrogates and NUL everywhere, control characters where
    text is one line, digits that are not ASCII or out of range in ids. Each
    is a 422 naming the field; the database's rows, the peers, claims and
    inboxes are as before; the broker logs no crash."""
    world = make_world(engine)
    _, doc = call(engine, "GET", "/openapi.json", None, world.headers(Field("", "/", "", "")))
    fields = documented_fields(json.loads(doc))
    names = {f.name for f in fields}
    assert names - CHOICES <= set(KINDS), names - CHOICES - set(KINDS)  # classify new fields
    assert len(fields) >= 40, len(fields)
    before = world.state()
    tried = 0
    for field in fields:
        if field.name in CHOICES:
            continue
        values = HOSTILE[KINDS[field.name]]
        if field.where != "body":
            # A URL carries no lone surrogate: one percent-encoded decodes to U+FFFD.
            values = [v for v in values if not any(0xD800 <= ord(c) <= 0xDFFF for c in v)]
        for value in values:
            _expect_refused(world, field, value, before)
            tried += 1
    where = "PostgreSQL" if engine.db else "SQLite"
    print(f"\n{tried} hostile values over {len(fields)} fields on {where}")
    assert "Traceback" not in broker_log(engine)


def test_surrogates_in_urls_are_harmless(engine: Broker) -> None:
    """A surrogate's UTF-8 form (ED A0 80) in a query or path is not UTF-8:
    it reads as U+FFFD, and the request is answered without a crash."""
    world = make_world(engine)
    before = world.state()
    for target in (
        "/v1/events?repo=%ED%A0%80",
        "/v1/intents?repo=r&path=%ED%A0%80",
        "/v1/peers?cwd=%ED%A0%80&scope=directory",
    ):
        status, answer = call(engine, "GET", target, None, world.headers(Field("", "/", "", "")))
        assert status < 500, (target, answer[:200])
    assert world.state() == before


def test_non_finite_numbers_are_refused(engine: Broker) -> None:
    """Python's JSON parser reads NaN and Infinity; nothing else would store them."""
    world = make_world(engine)
    before = world.state()
    headers = {**world.headers(Field("", "/", "", "")), "Content-Type": "application/json"}
    cases = [
        (
            "/v1/intents",
            '{"repo_id": "r", "patterns": ["x/"], "reason": "r", "ttl_seconds": NaN}',
            "ttl_seconds",
        ),
        (
            "/v1/peers",
            '{"cwd": "/x", "repo_id": "r", "repo_root": "/x", "pid_start": Infinity}',
            "pid_start",
        ),
    ]
    for path, body, name in cases:
        status, answer = call(engine, "POST", path, body.encode(), headers)
        assert status == 422 and name in json.loads(answer)["message"], answer
    assert world.state() == before


_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
_CONTROLS = st.one_of(st.integers(0, 0x1F).map(chr), st.integers(0x7F, 0x9F).map(chr))
_ODD_DIGITS = st.characters(categories=["Nd", "No"]).filter(
    lambda c: c.isdigit() and not c.isascii()
)


def _hostile(kind: str) -> st.SearchStrategy[str]:
    """Random text with at least one character this kind refuses in it."""
    if kind.startswith("id:"):
        prefix = kind[3:]
        digits = st.text("0123456789", max_size=5)
        return st.one_of(
            st.builds(
                lambda p, a, odd, b: p + a + odd + b,
                st.sampled_from(["", prefix]),
                digits,
                _ODD_DIGITS,
                digits,
            ),
            st.integers(2**63, 10**40).map(lambda n: f"{prefix}{n}"),
        )
    bad = {"path": st.one_of(_SURROGATES, st.just("\x00"))}.get(
        kind,
        st.one_of(
            _SURROGATES,
            _CONTROLS.filter(lambda c: c not in "\t\n\r") if kind == "text" else _CONTROLS,
        ),
    )
    return st.builds(lambda a, c, b: a + c + b, st.text(max_size=12), bad, st.text(max_size=12))


def test_generated_hostile_strings_in_random_fields_write_nothing(engine: Broker) -> None:
    """Hypothesis: text of any script with a bad character hidden in it, or
    an id with a non-ASCII digit or beyond 64 bits, in any body field."""
    world = make_world(engine)
    _, doc = call(engine, "GET", "/openapi.json", None, world.headers(Field("", "/", "", "")))
    fields = [
        f for f in documented_fields(json.loads(doc)) if f.where == "body" and f.name not in CHOICES
    ]
    before = world.state()
    cases = st.sampled_from(fields).flatmap(
        lambda f: st.tuples(st.just(f), _hostile(KINDS[f.name]))
    )

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: tuple[Field, str]) -> None:
        _expect_refused(world, case[0], case[1], before)

    run()
    assert "Traceback" not in broker_log(engine)


# ---- Host ---------------------------------------------------------------------------------
BAD_HOSTS = [
    "[::1]evil.com",
    "127.0.0.1:evil",
    "127.0.0.1:",
    "127.0.0.1:99999",
    "127.0.0.1:80:80",
    "127.0.0.1 evil.com",
    "127.0.0.1@evil.com",
    "evil.com#@127.0.0.1",
    "localhost.evil.com",
    "127.0.0.1.nip.io",
    "[::1",
    "::1",
    "[::1%25lo]",
    "[fe80::1]",
    "127.1",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "2130706433",
    "",
    "\u00e9vil",
]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_malformed_or_foreign_host_is_refused(shared_broker: Broker, host: str) -> None:
    head = (
        f"GET /v1/status HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {shared_broker.token}\r\nConnection: close\r\n\r\n"
    )
    status, _, body = parse_answer(raw_exchange(shared_broker, head.encode("utf-8")))
    assert status in (400, 403), (host, body)
    if status == 403:  # 400: the HTTP parser itself refused it
        answer = json.loads(body)
        assert answer["error"] == "forbidden" and "Host" in answer["message"], answer


@pytest.mark.parametrize(
    "hosts",
    [[], ["127.0.0.1", "127.0.0.1"], ["127.0.0.1", "evil.com"], ["evil.com", "127.0.0.1"]],
    ids=["none", "twice", "then-evil", "evil-first"],
)
def test_exactly_one_host_header(shared_broker: Broker, hosts: list[str]) -> None:
    lines = "".join(f"Host: {h}\r\n" for h in hosts)
    head = (
        f"GET /v1/status HTTP/1.1\r\n{lines}Authorization: Bearer {shared_broker.token}\r\n"
        "Connection: close\r\n\r\n"
    )
    status, _, body = parse_answer(raw_exchange(shared_broker, head.encode()))
    assert status == 403, body
    answer = json.loads(body)
    assert answer["error"] == "forbidden" and "exactly one" in answer["message"], answer


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:7899",
        "localhost",
        "LocalHost:1",
        "[::1]",
        "[::1]:7899",
        "[0:0:0:0:0:0:0:1]",
        "127.0.0.2:80",
    ],
)
def test_loopback_names_and_addresses_pass(shared_broker: Broker, host: str) -> None:
    head = (
        f"GET /v1/status HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {shared_broker.token}\r\nConnection: close\r\n\r\n"
    )
    status, _, body = parse_answer(raw_exchange(shared_broker, head.encode()))
    assert status == 200, (host, body)


def test_host_rules_with_a_team_servers_public_name() -> None:
    names = ("lockd.example.com",)
    for ok in ("lockd.example.com", "LOCKD.example.com:443", "127.0.0.1:7899"):
        assert host_refusal([ok], names) is None, ok
    for bad in (
        "lockd.example.com.evil.com",
        "evil.lockd.example.com",
        "[::1]lockd.example.com",
        "lockd.example.com:https",
        "lockd.example.com:443:1",
    ):
        assert host_refusal([bad], names) is not None, bad
    assert "exactly one" in (host_refusal(["lockd.example.com"] * 2, names) or "")


# ---- a write the database refuses changes nothing -------------------------------------------
REFUSE_SQLITE = """
CREATE TRIGGER hostile_insert BEFORE INSERT ON peers WHEN NEW.summary = 'boom' OR NEW.cwd = '/boom'
BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
CREATE TRIGGER hostile_update BEFORE UPDATE ON peers WHEN NEW.summary = 'boom' OR NEW.cwd = '/boom'
BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
"""
REFUSE_POSTGRES = """
CREATE FUNCTION hostile_refuse() RETURNS trigger AS $$ BEGIN
  IF NEW.summary = 'boom' OR NEW.cwd = '/boom' THEN RAISE EXCEPTION 'refused by the test'; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER hostile_refuse BEFORE INSERT OR UPDATE ON peers
FOR EACH ROW EXECUTE FUNCTION hostile_refuse();
"""


def refuse_boom(broker: Broker) -> None:
    """From now on the database refuses any peer row with summary 'boom' or
    cwd '/boom': a real failing write, past every check of the broker's."""
    if broker.db:
        with psycopg.connect(broker.db, autocommit=True) as conn:
            conn.execute(REFUSE_POSTGRES)
        return
    db = sqlite3.connect(broker.home / "lockd.db", timeout=5)
    try:
        db.executescript(REFUSE_SQLITE)
    finally:
        db.close()


def test_register_and_set_summary_change_memory_only_after_the_write(engine: Broker) -> None:
    """Before: both changed the peer in memory, then wrote; a failed write
    left memory and the database disagreeing. Now a failed write leaves both
    as they were, and the next good write works."""
    alice = engine.register(name="alice", summary="before")
    me = alice.peer["peer_id"]  # type: ignore[attr-defined]
    refuse_boom(engine)
    headers = {
        "Authorization": f"Bearer {engine.token}",
        "X-Lockd-Session": alice.credential or "",
        "Content-Type": "application/json",
    }

    def seen() -> tuple[Any, ...]:
        mine = alice.call(Api.whoami())
        listed = {p["peer_id"]: p for p in engine.client().call(Api.peers())["peers"]}
        return (mine["summary"], mine["cwd"], listed[me]["summary"]), db_rows(engine)

    before = seen()
    status, answer = call(engine, "PUT", "/v1/peers/me/summary", b'{"summary": "boom"}', headers)
    assert status >= 500, answer
    assert seen() == before  # memory and database: still "before"
    again = {
        "cwd": "/boom",
        "repo_id": REPO,
        "repo_root": "/boom",
        "kind": "person",
        "summary": "x",
    }
    status, answer = call(
        engine,
        "POST",
        "/v1/peers",
        json.dumps({**again, "credential": alice.credential}).encode(),
        headers,
    )
    assert status >= 500, answer
    assert seen() == before
    ghost = {
        "cwd": "/tmp/g",
        "repo_id": REPO,
        "repo_root": "/tmp/g",
        "kind": "person",
        "name": "ghost",
        "summary": "boom",
    }
    status, answer = call(engine, "POST", "/v1/peers", json.dumps(ghost).encode(), headers)
    assert status >= 500, answer
    assert seen() == before  # no half-registered peer anywhere
    assert alice.call(Api.set_summary("after"))["summary"] == "after"
    assert alice.call(Api.whoami())["summary"] == "after"
    real = engine.register(name="ghost")  # the name was never taken by the failed one
    assert real.peer["name"] == "ghost"  # type: ignore[attr-defined]
