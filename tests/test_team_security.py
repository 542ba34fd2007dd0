"""A team server's front door: `lockd serve --host 0.0.0.0` with TLS (a
self-signed certificate made here with the openssl CLI), per-user tokens,
attribution of every action to its user, and Host/Origin rules for the
public name. Real broker processes and the real CLI; nothing mocked."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockd.client.aio import AsyncClient
from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.testing import LOCKD_ENV, Broker, free_port
from tests.pgdb import pg, pg_url  # noqa: F401 - fixtures, by name
from tests.polling import wait_for
from tests.test_cli import Ran, console

REPO = "dir:/srv/team-proj"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, lockd.test and 127.0.0.1, and its key."""
    where = tmp_path_factory.mktemp("tls")
    crt, key = where / "cert.pem", where / "key.pem"
    request = "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
    subprocess.run(
        ["openssl", *request.split(), "-keyout", str(key), "-out", str(crt)]
        + [
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,DNS:lockd.test,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return crt, key


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, cert: tuple[Path, Path]) -> Iterator[Broker]:
    """One TLS team server for the module (each test uses its own user names),
    with LOCKD_CA pointing this process's clients at its certificate."""
    port = free_port()
    broker = Broker(
        tmp_path_factory.mktemp("team-home"),
        port,
        serve_args=(
            "--host",
            "0.0.0.0",
            "--tls-cert",
            str(cert[0]),
            "--tls-key",
            str(cert[1]),
            "--public-name",
            "localhost",
            "--public-name",
            "lockd.test",  # not a loopback name: only the public-name rule lets it in
        ),
        public_url=f"https://localhost:{port}",
    )
    with pytest.MonkeyPatch.context() as mp:
        for key in LOCKD_ENV:
            mp.delenv(key, raising=False)
        mp.setenv("LOCKD_CA", str(cert[0]))
        broker.start()
        yield broker
        broker.stop()


def admin(team: Broker) -> Client:
    """The broker machine's own token: the only one that manages tokens."""
    return Client(team.url, token=team.token)


def user_token(team: Broker, name: str) -> str:
    return str(admin(team).call(Api.create_token(name))["token"])


def register(team: Broker, token: str, name: str) -> Client:
    fields = {"cwd": "/srv/team-proj", "repo_id": REPO, "repo_root": "/srv/team-proj"}
    peer = Client(team.url, token=token).call(
        Api.register(**fields, kind="person", client="test", name=name)
    )
    client = Client(team.url, token=token, credential=peer["credential"])
    client.peer = peer  # type: ignore[attr-defined]
    return client


def https(
    team: Broker, cert: Path, path: str, headers: dict[str, str], method: str = "GET"
) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection("localhost", team.port, timeout=5, context=context)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def cli(env: dict[str, str], *args: str, code: int = 0, cwd: Path | None = None) -> Ran:
    """`lockd ARGS` in a process of its own (the console script), as a team member runs it."""
    return console(env, cwd or Path.cwd(), *args, code=code)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LOCKD_ENV}
    env.update(extra)
    return env


# ---- lockd serve refuses an unsafe bind -----------------------------------------
@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--host", "0.0.0.0"], "--tls-cert CERT and --tls-key KEY"),
        (["--host", "0.0.0.0", "--tls-cert", "CERT"], "add --tls-key KEY"),
        (["--host", "0.0.0.0", "--tls-cert", "CERT", "--tls-key", "KEY"], "--public-name"),
        (["--tls-cert", "CERT", "--tls-key", "KEY", "--public-name", "https://x"], "public name"),
        (["--tls-cert", "/nonexistent.pem", "--tls-key", "KEY"], "cannot serve TLS"),
    ],
)
def test_serve_refuses_a_bind_beyond_loopback_without_tls_and_a_name(
    tmp_path: Path, cert: tuple[Path, Path], flags: list[str], needle: str
) -> None:
    args = [str(cert[0]) if f == "CERT" else str(cert[1]) if f == "KEY" else f for f in flags]
    proc = cli(
        clean_env(LOCKD_HOME=str(tmp_path)),
        "serve",
        "--port",
        str(free_port()),
        *args,
        code=2,
    )
    assert needle in proc.stderr
    assert not (tmp_path / "broker.json").exists()  # refused before anything started


# ---- TLS -------------------------------------------------------------------------
def test_plain_http_to_the_tls_port_gets_nothing(team: Broker) -> None:
    with pytest.raises(LockdError) as caught:
        Client(f"http://127.0.0.1:{team.port}", token=team.token, timeout=2).call(Api.status())
    assert caught.value.kind == "unavailable"


def test_an_untrusted_certificate_names_lockd_ca(
    team: Broker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LOCKD_CA")
    with pytest.raises(LockdError) as caught:
        Client(team.url, token=team.token).call(Api.status())
    assert caught.value.kind == "unavailable"
    assert "not trusted" in caught.value.message and "LOCKD_CA" in caught.value.message
    monkeypatch.setenv("LOCKD_CA", str(tmp_path / "missing.pem"))
    with pytest.raises(LockdError) as caught:
        Client(team.url, token=team.token).call(Api.status())
    assert caught.value.kind == "invalid" and "LOCKD_CA" in caught.value.message


# ---- per-user tokens: attribution, revocation, admin rights -------------------------
def test_a_user_token_registers_claims_and_lists_attributed_to_its_user(team: Broker) -> None:
    alice = register(team, user_token(team, "alice"), "alice-laptop")
    assert alice.peer["user"] == "alice"  # type: ignore[attr-defined]
    granted = alice.call(Api.announce(REPO, ["src/team/"], "refactor"))
    assert granted["granted"]
    locks = alice.call(Api.locks(REPO))["locks"]
    assert [(lk["pattern"], lk["mine"]) for lk in locks if lk["peer_name"] == "alice-laptop"] == [
        ("/src/team/", True)
    ]
    local = register(team, team.token, "server-side")
    peers = {p["name"]: p["user"] for p in local.call(Api.peers("repo"))["peers"]}
    assert peers["alice-laptop"] == "alice"
    assert local.call(Api.whoami())["user"] == "local"
    events = alice.call(Api.events(REPO))["events"]
    granted_event = next(e for e in events if e["event"] == "granted")
    assert granted_event["user"] == "alice" and granted_event["detail"]["pattern"] == "/src/team/"
    # The MCP server's async client speaks the same TLS, with LOCKD_CA.
    status = asyncio.run(AsyncClient(team.url, token=team.token).call(Api.status()))
    assert status["peers"] >= 2 and status["home"] == str(team.home)
    # A user sees the counts, not where the server keeps its files.
    assert alice.call(Api.status())["home"] is None


def test_revoking_a_token_refuses_its_next_call_with_what_to_do(team: Broker) -> None:
    bob = register(team, user_token(team, "bob"), "bob-vm")
    assert bob.call(Api.whoami())["user"] == "bob"
    env = clean_env(LOCKD_HOME=str(team.home), LOCKD_URL=team.url, LOCKD_CA=os.environ["LOCKD_CA"])
    cli(env, "token", "revoke", "bob")
    with pytest.raises(LockdError) as caught:
        bob.call(Api.whoami())
    assert caught.value.kind == "unauthorized"
    assert "revoked" in caught.value.message and "lockd token create bob" in caught.value.message
    with pytest.raises(LockdError) as caught:
        Client(team.url, token="not-a-token").call(Api.status())
    assert caught.value.kind == "unauthorized" and "lockd token create" in caught.value.message


def test_a_user_token_cannot_manage_tokens_nor_stop_the_broker(team: Broker) -> None:
    carol = Client(team.url, token=user_token(team, "carol"))
    for req in (
        Api.create_token("mallory"),
        Api.tokens(),
        Api.revoke_token("alice"),
        Api.shutdown(),
    ):
        with pytest.raises(LockdError) as caught:
            carol.call(req)
        assert caught.value.kind == "forbidden", req
        assert "broker's machine" in caught.value.message
    assert admin(team).alive()
    assert "mallory" not in {u["name"] for u in admin(team).call(Api.tokens())["users"]}


def test_a_session_belongs_to_its_user(team: Broker) -> None:
    """Another user's session credential acts as nothing: not in calls, and
    registering with it makes a new peer instead of taking that one over."""
    erin = register(team, user_token(team, "erin"), "erin-box")
    frank_token = user_token(team, "frank")
    stolen = Client(team.url, token=frank_token, credential=erin.credential)
    with pytest.raises(LockdError) as caught:
        stolen.call(Api.whoami())
    assert caught.value.kind == "forbidden" and "'erin'" in caught.value.message
    fields = {"cwd": "/srv/team-proj", "repo_id": REPO, "repo_root": "/srv/team-proj"}
    again = Client(team.url, token=frank_token).call(
        Api.register(**fields, kind="person", credential=erin.credential)
    )
    assert again["user"] == "frank"
    assert again["peer_id"] != erin.peer["peer_id"]  # type: ignore[attr-defined]
    assert again["credential"] != erin.credential
    assert erin.call(Api.whoami())["user"] == "erin"


def test_token_names_are_checked_and_one_live_token_per_user(team: Broker) -> None:
    user_token(team, "gina")
    with pytest.raises(LockdError) as caught:
        admin(team).call(Api.create_token("gina"))
    assert caught.value.kind == "conflict"
    assert "lockd token revoke gina" in caught.value.message
    for bad in ("", "has space", "../etc", "-dash", "x" * 65, "local", "LOCAL"):
        with pytest.raises(LockdError) as caught:
            admin(team).call(Api.create_token(bad))
        assert caught.value.kind == "invalid", bad
    with pytest.raises(LockdError) as caught:
        admin(team).call(Api.revoke_token("nobody"))
    assert caught.value.kind == "not_found" and "'nobody'" in caught.value.message


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_tokens_users_and_attribution_survive_a_restart(
    lockd_home: Path, request: pytest.FixtureRequest, engine: str
) -> None:
    """Stored, not only in memory, on either engine (migration 0002): a live
    token still opens, a revoked one stays refused, peers keep their user."""
    db = request.getfixturevalue("pg") if engine == "postgres" else None
    broker = Broker(lockd_home, free_port(), db=db)
    broker.start()
    try:
        kept, gone = user_token(broker, "kim"), user_token(broker, "lou")
        kim = register(broker, kept, "kim-box")
        assert kim.call(Api.announce(REPO, ["a.txt"], "x"))["granted"]
        admin(broker).call(Api.revoke_token("lou"))
        broker.restart()
        assert kim.call(Api.whoami())["user"] == "kim"
        with pytest.raises(LockdError) as caught:
            Client(broker.url, token=gone).call(Api.status())
        assert "revoked" in caught.value.message
        users = {u["name"]: u["revoked_at"] for u in admin(broker).call(Api.tokens())["users"]}
        assert users["kim"] is None and users["lou"] is not None
        events = admin(broker).call(Api.events(REPO))["events"]
        assert [e["user"] for e in events if e["event"] == "granted"] == ["kim"]
    finally:
        broker.stop()


def test_a_token_made_or_revoked_on_one_replica_counts_on_the_other(
    tmp_path: Path,
    pg: str,  # noqa: F811 - the imported fixture, by name
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two brokers on one database share users: each re-reads them when the
    other changes them (the change feed calls Accounts.reload)."""
    for key in LOCKD_ENV:
        monkeypatch.delenv(key, raising=False)
    one, two = (Broker(tmp_path / name, free_port(), db=pg) for name in ("one", "two"))
    for broker in (one, two):
        broker.home.mkdir()
        broker.start()
    try:
        token = user_token(one, "max")

        def accepted() -> bool:
            try:
                Client(two.url, token=token).call(Api.status())
            except LockdError:
                return False
            return True

        wait_for(accepted, timeout=3)
        admin(one).call(Api.revoke_token("max"))
        wait_for(lambda: not accepted(), timeout=3)
    finally:
        one.stop()
        two.stop()


# ---- Host and Origin with the public name -----------------------------------------
def test_host_and_origin_rules_know_the_public_name(team: Broker, cert: tuple[Path, Path]) -> None:
    auth = {"Authorization": f"Bearer {team.token}"}
    ok = [
        {},
        {"Host": f"localhost:{team.port}"},
        {"Host": f"127.0.0.1:{team.port}"},
        {"Origin": f"https://localhost:{team.port}"},
        {"Origin": "https://localhost"},
        {"Host": f"lockd.test:{team.port}", "Origin": f"https://lockd.test:{team.port}"},
        {"Host": "LOCKD.test", "Origin": "https://lockd.test"},
    ]
    for extra in ok:
        status, data = https(team, cert[0], "/v1/status", {**auth, **extra})
        assert status == 200, (extra, data)
    refused = [
        ({"Host": "evil.example"}, "Host"),
        ({"Host": f"localhost.evil.example:{team.port}"}, "Host"),
        ({"Host": f"lockd.test.evil.example:{team.port}"}, "Host"),
        ({"Origin": f"http://lockd.test:{team.port}"}, "Origin"),
        ({"Origin": "https://evil.example"}, "Origin"),
        ({"Origin": f"http://localhost:{team.port}"}, "Origin"),  # not the scheme it serves
        ({"Origin": f"https://localhost:{team.port + 1}"}, "Origin"),
    ]
    for extra, needle in refused:
        status, data = https(team, cert[0], "/v1/status", {**auth, **extra})
        assert status == 403 and needle in data["message"], (extra, data)


# ---- the CLI ---------------------------------------------------------------------
def test_cli_token_create_list_revoke_json(team: Broker) -> None:
    env = clean_env(LOCKD_HOME=str(team.home), LOCKD_URL=team.url, LOCKD_CA=os.environ["LOCKD_CA"])
    created = json.loads(cli(env, "token", "create", "hank", "--json").stdout)
    assert created["name"] == "hank" and created["created_by"] == "local"
    token = created["token"]
    assert len(token) >= 40
    again = cli(env, "token", "create", "hank", code=5)
    assert "already has a token" in again.stderr and token not in again.stderr
    listed = cli(env, "token", "list", "--json").stdout
    assert token not in listed and "hash" not in listed
    hank = next(u for u in json.loads(listed)["users"] if u["name"] == "hank")
    assert set(hank) == {"name", "created_at", "created_by", "revoked_at"}
    assert hank["revoked_at"] is None
    revoked = json.loads(cli(env, "token", "revoke", "hank", "--json").stdout)
    assert revoked["name"] == "hank" and revoked["revoked_at"] >= created["created_at"]
    hank = next(
        u
        for u in json.loads(cli(env, "token", "list", "--json").stdout)["users"]
        if u["name"] == "hank"
    )
    assert hank["revoked_at"] == revoked["revoked_at"]
    # After a revoke, a new token for the same user; the old one stays refused.
    fresh = json.loads(cli(env, "token", "create", "hank", "--json").stdout)["token"]
    assert Client(team.url, token=fresh).call(Api.status())["version"]
    with pytest.raises(LockdError):
        Client(team.url, token=token).call(Api.status())
    assert cli(env, "token", "create", "bad name", code=2).stderr.startswith("lockd: user name")


def test_cli_as_a_remote_user_claims_and_sees_its_user(team: Broker, tmp_path: Path) -> None:
    """A person's CLI on another machine: its own LOCKD_HOME, LOCKD_URL, LOCKD_CA
    and a user token; it never needs the broker's token file."""
    home = tmp_path / "client-home"
    work = tmp_path / "proj"
    work.mkdir()
    env = clean_env(
        LOCKD_HOME=str(home),
        LOCKD_URL=team.url,
        LOCKD_CA=os.environ["LOCKD_CA"],
        LOCKD_TOKEN=user_token(team, "ivy"),
        LOCKD_NAME="ivy-cli",
    )
    claim = json.loads(cli(env, "claim", "notes.txt", "-r", "writing", "--json", cwd=work).stdout)
    assert claim["granted"]
    me = json.loads(cli(env, "whoami", "--json", cwd=work).stdout)
    assert me["user"] == "ivy" and me["name"] == "ivy-cli"
    peers = cli(env, "peers", cwd=work).stdout
    assert "USER" in peers.splitlines()[0]


def test_clients_never_start_a_local_broker_for_lockd_url(tmp_path: Path) -> None:
    env = clean_env(
        LOCKD_HOME=str(tmp_path), LOCKD_URL=f"https://localhost:{free_port()}", LOCKD_TOKEN="t"
    )
    proc = cli(env, "claim", "x", "-r", "r", code=6, cwd=tmp_path)  # claim starts one locally
    assert "never starts a local broker" in proc.stderr
    assert "check LOCKD_URL" in cli(env, "whoami", code=6, cwd=tmp_path).stderr  # starts none
    assert not (tmp_path / "broker.json").exists()


def test_the_dashboard_cookie_is_secure_over_tls(team: Broker, cert: tuple[Path, Path]) -> None:
    """Served over TLS, the dashboard's session cookie is marked Secure, so a
    browser never sends it over plain HTTP."""
    alice = register(team, user_token(team, "dana"), "dana-laptop")
    path = alice.call(Api.dashboard_ticket())["path"]
    context = ssl.create_default_context(cafile=str(cert[0]))
    conn = http.client.HTTPSConnection("localhost", team.port, timeout=5, context=context)
    try:
        conn.request("GET", path, headers={"Host": f"localhost:{team.port}"})
        resp = conn.getresponse()
        resp.read()
        cookie = resp.getheader("set-cookie") or ""
    finally:
        conn.close()
    assert resp.status == 303
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=strict"} <= flags, cookie


def test_a_hook_cannot_put_a_commit_on_another_users_agent(team: Broker) -> None:
    """One user's hook names another user's peer as the committer: the record and the
    holder's notice name user committer-user, never jack's agent."""
    ivy = Client(team.url, token=user_token(team, "committer-user"))
    jack = register(team, user_token(team, "jack"), "jack-agent")
    holder = register(team, team.token, "rule-holder")
    held = holder.call(Api.announce(REPO, ["/commit-rule/"], "mine"))["intents"][0]
    ivy.call(
        Api.commit_notice(
            REPO,
            [held["intent_id"]],
            ["commit-rule/x.py"],
            "pre-commit",
            jack.peer["peer_id"],  # type: ignore[attr-defined]
        )
    )
    wait_for(lambda: holder.call(Api.inbox(mark_read=False))["messages"])
    (note,) = [m for m in holder.call(Api.inbox())["messages"] if "commit" in m["text"]]
    assert "user committer-user" in note["text"] and "jack-agent" not in note["text"]
    (event,) = [
        e for e in holder.call(Api.events(REPO))["events"] if e["event"] == "commit_touched"
    ]
    assert event["actor_id"] is None
