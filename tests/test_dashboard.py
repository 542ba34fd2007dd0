"""The live dashboard against a real broker: its auth rules over plain HTTP,
then the page itself in a real headless Chromium driven by playwright (those
tests skip when chromium or the playwright package is missing).

Set LOCKD_DASHBOARD_SCREENSHOT=docs/dashboard.png to refresh the README's
screenshot from the browser run."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.local.repo import identify
from lockd.server.dashboard import repo_label
from lockd.server.dashboard_auth import TICKET_SECONDS, DashboardAuth
from lockd.testing import Broker
from tests.polling import wait_for

REPO = "dir:/tmp/w"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WRITE = {"X-Lockd-Dashboard": "1"}


def signed_in(broker: Broker, name: str = "ana") -> tuple[httpx.Client, Client]:
    """An HTTP client holding a dashboard cookie for a freshly registered person."""
    person = broker.register(name=name)
    ticket = person.call(Api.dashboard_ticket())
    http = httpx.Client(base_url=broker.url, timeout=5)
    resp = http.get(ticket["path"])
    assert resp.status_code == 303, resp.text
    return http, person


def locks(broker: Broker) -> list[dict[str, Any]]:
    return broker.client().call(Api.locks())["locks"]


# ---- auth rules, no browser ------------------------------------------------------
def test_ticket_needs_token_and_session(broker: Broker) -> None:
    with pytest.raises(LockdError) as no_token:
        Client(broker.url, token="").call(Api.dashboard_ticket())
    assert no_token.value.kind == "unauthorized"
    with pytest.raises(LockdError) as no_session:
        broker.client().call(Api.dashboard_ticket())  # the token alone names no person
    assert no_session.value.kind == "unauthorized"


def test_ticket_becomes_a_strict_cookie_once(broker: Broker) -> None:
    person = broker.register(name="ana")
    ticket = person.call(Api.dashboard_ticket())
    assert ticket["expires_at"] - time.time() <= TICKET_SECONDS
    http = httpx.Client(base_url=broker.url, timeout=5)
    resp = http.get(ticket["path"])
    assert resp.status_code == 303
    assert resp.headers["location"] == "/dashboard"  # the ticket leaves the address bar
    cookie = resp.headers["set-cookie"].lower()
    assert f"lockd_dashboard_{broker.port}=" in cookie
    for part in ("httponly", "samesite=strict", "path=/dashboard"):
        assert part in cookie
    assert ticket["ticket"] not in cookie
    page = http.get("/dashboard")
    assert page.status_code == 200 and "<title>lockd dashboard</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    state = http.get("/dashboard/api/state").json()
    assert state["me"]["name"] == "ana"
    assert [p["name"] for p in state["peers"]] == ["ana"]

    again = httpx.get(broker.url + ticket["path"], timeout=5)  # spent: refused without cookie
    assert again.status_code == 403 and "already used" in again.text


def test_without_a_session_everything_is_refused(broker: Broker) -> None:
    anon = httpx.Client(base_url=broker.url, timeout=5)
    page = anon.get("/dashboard")
    assert page.status_code == 401 and "lockd dashboard" in page.text
    assert anon.get("/dashboard?ticket=made-up").status_code == 403
    token = {"Authorization": f"Bearer {broker.token}"}
    for path in ("/dashboard/api/state", "/dashboard/api/events", "/dashboard/app.js"):
        assert anon.get(path).status_code == 401, path
        assert anon.get(path, headers=token).status_code == 401, path  # the token is no cookie
    anon.cookies.set(f"lockd_dashboard_{broker.port}", "forged", path="/dashboard")
    assert anon.get("/dashboard/api/state").status_code == 401
    assert anon.get("/dashboard").status_code == 401


def test_cookie_opens_only_the_dashboard(broker: Broker) -> None:
    http, _ = signed_in(broker)
    assert http.get("/dashboard/api/state").status_code == 200
    resp = http.get("/v1/intents")
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


def test_writes_need_header_json_and_own_origin(broker: Broker) -> None:
    http, _ = signed_in(broker)
    holder = broker.register(name="claude-api")
    intent = holder.call(Api.announce(REPO, ["src/api/"], "rewrite auth"))["intents"][0]
    body = {"intent_id": intent["intent_id"], "force": True}
    assert http.post("/dashboard/api/release", json=body).status_code == 403  # no header
    form = http.post(
        "/dashboard/api/release",
        content=f"intent_id={intent['intent_id']}&force=true",
        headers={**WRITE, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    evil = {**WRITE, "Origin": "http://evil.example"}
    assert http.post("/dashboard/api/release", json=body, headers=evil).status_code == 403
    rebind = {**WRITE, "Host": "evil.example"}
    assert http.post("/dashboard/api/release", json=body, headers=rebind).status_code == 403
    assert [lk["intent_id"] for lk in locks(broker)] == [intent["intent_id"]]

    mine = {**WRITE, "Origin": broker.url}
    own = http.post("/dashboard/api/release", json={**body, "force": False}, headers=mine)
    assert own.status_code == 403 and "force" in own.json()["message"]  # not ana's claim
    done = http.post("/dashboard/api/release", json=body, headers=mine)
    assert done.json() == {"released": [intent["intent_id"]]}
    assert locks(broker) == []
    told = holder.call(Api.inbox())["messages"]
    assert any("ana" in m["text"] and "force-released" in m["text"] for m in told)


def test_send_acts_as_the_person(broker: Broker) -> None:
    http, person = signed_in(broker)
    agent = broker.register(name="claude-api")
    sent = http.post(
        "/dashboard/api/send", json={"to": "claude-api", "message": "stop at 5"}, headers=WRITE
    )
    assert sent.status_code == 200, sent.text
    [message] = agent.call(Api.inbox())["messages"]
    assert message["from_id"] == person.peer["peer_id"]  # type: ignore[attr-defined]
    assert message["text"] == "stop at 5"
    bad = http.post("/dashboard/api/send", json={"to": "nobody", "message": "x"}, headers=WRITE)
    assert bad.status_code == 404
    # The banner shows this: the page's own words for the next step, not an MCP tool's.
    assert (
        bad.json()["message"]
        == "no peer with id or name 'nobody': see the Peers table for who is there"
    )
    feed = http.get("/dashboard/api/state").json()["events"]
    assert any(
        e["kind"] == "message" and "ana sent a message to claude-api" in e["text"] for e in feed
    )


def test_state_marks_refused_conflicts(broker: Broker) -> None:
    http, _ = signed_in(broker)
    holder = broker.register(name="claude-api")
    other = broker.register(name="codex-web")
    held = holder.call(Api.announce(REPO, ["src/api/"], "rewrite auth"))["intents"][0]
    free = holder.call(Api.announce(REPO, ["docs/"], "docs"))["intents"][0]
    refused = other.call(Api.announce(REPO, ["src/api/auth.py"], "fix login"))
    assert not refused["granted"]
    state = http.get("/dashboard/api/state").json()
    [conflict] = state["conflicts"]
    assert conflict["peer_name"] == "codex-web"
    assert conflict["blocked_by"] == [held["intent_id"]]
    assert conflict["example"] == "src/api/auth.py"  # the path both claim, as the refusal said
    flags = {c["intent_id"]: c["contested"] for c in state["claims"]}
    assert flags == {held["intent_id"]: True, free["intent_id"]: False}
    [line] = [e for e in state["events"] if e["kind"] == "refused"]
    assert "codex-web was refused /src/api/auth.py" in line["text"] and "claude-api" in line["text"]
    holder.call(Api.release(intent_ids=[held["intent_id"]]))
    assert http.get("/dashboard/api/state").json()["conflicts"] == []  # settled


def test_a_refusal_nobody_waits_for_leaves_the_list(broker: Broker) -> None:
    """The refused session left: the claim it hit is still held, yet nobody
    is blocked any more, so it is no conflict (nor the claim contested)."""
    http, _ = signed_in(broker)
    holder = broker.register(name="claude-api")
    held = holder.call(Api.announce(REPO, ["src/api/"], "rewrite auth"))["intents"][0]
    gone, stays = broker.register(name="codex-web"), broker.register(name="gemini")
    assert not gone.call(Api.announce(REPO, ["src/api/a.py"], "fix login"))["granted"]
    assert not stays.call(Api.announce(REPO, ["src/api/b.py"], "docs"))["granted"]
    assert len(http.get("/dashboard/api/state").json()["conflicts"]) == 2
    gone.call(Api.goodbye())
    state = http.get("/dashboard/api/state").json()
    assert [c["peer_name"] for c in state["conflicts"]] == ["gemini"]
    stays.call(Api.goodbye())
    state = http.get("/dashboard/api/state").json()
    assert state["conflicts"] == []
    assert [(c["intent_id"], c["contested"]) for c in state["claims"]] == [
        (held["intent_id"], False)
    ]


@pytest.mark.parametrize(
    ("repo_id", "roots", "name", "where"),
    [
        ("gitdir:/tmp/pytest-7/proj/.git", [], "proj", "/tmp/pytest-7/proj"),
        ("gitdir:/srv/git/tool.git", [], "tool", "/srv/git/tool"),
        ("git:github.com/acme/web-app", ["/home/me/web"], "web-app", "github.com/acme/web-app"),
        ("git:file:/srv/mirror/lib", [], "lib", "/srv/mirror/lib"),
        ("dir:/home/me/notes", [], "notes", "/home/me/notes"),
        ("root:4b825dc6", ["/home/me/b", "/home/me/a"], "a", "/home/me/a"),  # another id form
        ("root:4b825dc6", [], "root:4b825dc6", ""),  # nothing known: the id itself
        ("dir:/", [], "/", "/"),
    ],
)
def test_repos_are_named_as_people_know_them(
    repo_id: str, roots: list[str], name: str, where: str
) -> None:
    assert repo_label(repo_id, roots) == {"name": name, "where": where}


def test_favicon_needs_no_sign_in(broker: Broker) -> None:
    """Browsers ask for it on every page, the sign-in refusal too: never a 401."""
    resp = httpx.get(broker.url + "/favicon.ico", timeout=5)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/svg+xml" and b"<svg" in resp.content


def nudge_kinds(http: httpx.Client, change: Callable[[], object]) -> list[str]:
    """Open the dashboard's event stream, make `change` once it says hello,
    and return the kinds of the `changed` nudge that follows."""
    with http.stream("GET", "/dashboard/api/events") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: hello"
        change()
        assert next(line for line in lines if line.startswith("event:")) == "event: changed"
        data = json.loads(next(line for line in lines if line.startswith("data:"))[5:])
        return list(data["kinds"])


def test_event_stream_nudges_on_change(broker: Broker) -> None:
    http, _ = signed_in(broker)
    agent = broker.register(name="claude-api")
    assert "claims" in nudge_kinds(
        http, lambda: agent.call(Api.announce(REPO, ["src/"], "refactor"))
    )


def test_tickets_expire_and_sessions_end() -> None:
    """The clock is injected: a minute is not worth waiting for in a test."""
    now = [1000.0]
    auth = DashboardAuth(7899, clock=lambda: now[0])
    ticket, _ = auth.issue_ticket("p-1")
    now[0] += TICKET_SECONDS + 1
    assert auth.redeem(ticket) is None
    ticket, _ = auth.issue_ticket("p-1")
    assert auth.redeem(ticket) == "p-1"
    assert auth.redeem(ticket) is None
    secret = auth.open_session("p-1")
    assert auth.session(secret) == "p-1" and auth.session("other") is None
    now[0] += 13 * 3600
    assert auth.session(secret) is None


def test_cli_hands_the_link_to_the_browser(broker: Broker, tmp_path: Path) -> None:
    """`lockd dashboard` opens the link with `webbrowser`, which honours $BROWSER."""
    opener = tmp_path / "opener"
    opener.write_text(f'#!/bin/sh\necho "$1" > {tmp_path}/opened\n')
    opener.chmod(0o755)
    out = subprocess.run(
        [sys.executable, "-m", "lockd", "dashboard"],
        env={**broker.env, "BROWSER": str(opener)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    url = (tmp_path / "opened").read_text().strip()
    assert url.startswith(f"{broker.url}/dashboard?ticket=") and url in out
    assert httpx.get(url, timeout=5).status_code == 303


# ---- the page in a real browser ---------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        why = f"no chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):  # .ci/run installs it: missing there is a failure
            pytest.fail(why)
        pytest.skip(why)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(8_000)
    page = context.new_page()
    yield page
    context.close()  # before the broker stops: it holds the event stream open


def dashboard_url(broker: Broker, cwd: Path) -> str:
    """What `lockd dashboard --no-open` prints: the person is the CLI's own peer."""
    out = subprocess.run(
        [sys.executable, "-m", "lockd", "dashboard", "--no-open"],
        env={**broker.env, "LOCKD_NAME": "ana"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert out.startswith(f"{broker.url}/dashboard?ticket="), out
    return out


def person_client(broker: Broker) -> Client:
    """The same person the CLI registered, from its identity file."""
    saved = json.loads((broker.home / "person.json").read_text())
    return broker.client(saved["credential"])


def test_page_shows_live_changes_and_acts(
    broker: Broker, browser_page: Any, repo: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    checkout, repo = repo, identify(str(repo)).repo_id  # a real checkout, as the person's CLI
    page.goto(dashboard_url(broker, checkout))
    assert page.url == f"{broker.url}/dashboard"  # the ticket is gone from the address bar
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator("#me")).to_have_text("signed in as ana")

    # A session announces: its peer and its claim appear without a reload.
    agent = broker.register(
        str(checkout),
        repo,
        kind="agent",
        name="claude-api",
        client="claude-code",
        summary="rewriting the auth layer",
    )
    expect(page.locator("#peers tr", has_text="claude-api")).to_contain_text("rewriting the auth")
    intent = agent.call(Api.announce(repo, ["src/api/"], "API v2"))["intents"][0]
    row = page.locator(f'tr[data-intent="{intent["intent_id"]}"]')
    expect(row).to_contain_text("src/api/")
    expect(row).to_contain_text("claude-api")
    expect(row).to_contain_text("API v2")
    expect(row.locator("td.ttl")).to_have_text("while the session lives")
    # The repo by its name and where it lives, never by its id (gitdir:/…/.git).
    expect(page.locator("#claims h3")).to_have_text(f"proj{os.path.realpath(checkout)}")
    expect(page.locator("#peers tr", has_text="claude-api").locator("td.repo")).to_have_text(
        f"proj{os.path.realpath(checkout)}"
    )
    assert repo not in page.inner_text("main")

    # Another is refused: the conflict and the claim it hit are highlighted.
    codex = broker.register(
        str(checkout),
        repo,
        kind="agent",
        name="codex-web",
        client="codex",
        summary="fixing the login bug",
    )
    assert not codex.call(Api.announce(repo, ["src/api/auth.py"], "fix login"))["granted"]
    conflict = page.locator("#conflicts li.conflict")
    expect(conflict).to_contain_text("codex-web")
    expect(conflict).to_contain_text(f"blocked by claude-api's /src/api/ ({intent['intent_id']})")
    expect(conflict).to_contain_text("both claim src/api/auth.py")
    expect(row).to_have_class("contested")
    expect(page.locator("#events li.refused").first).to_contain_text("codex-web was refused")

    # The person's own claim: released without a question.
    person = person_client(broker)
    mine = person.call(Api.announce(repo, ["/docs/"], "release notes", ttl_seconds=8 * 3600))
    mine_row = page.locator(f'tr[data-intent="{mine["intents"][0]["intent_id"]}"]')
    expect(mine_row).to_contain_text("ana (you)")
    expect(mine_row.locator("td.ttl")).to_have_text("8h")

    # A message from the page arrives as the person.
    page.fill("#send-to", "claude-api")
    page.fill("#send-text", "please hand over src/api by 5pm")
    page.click("#send button")
    expect(page.locator("#notice")).to_contain_text("sent m")
    texts = [(m["from_name"], m["text"]) for m in agent.call(Api.inbox())["messages"]]
    assert ("ana", "please hand over src/api by 5pm") in texts
    expect(page.locator("#events li.message").first).to_contain_text("ana sent a message")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("LOCKD_DASHBOARD_SCREENSHOT"):
        shutil.copy(shot, os.environ["LOCKD_DASHBOARD_SCREENSHOT"])

    mine_row.locator("button.release").click()
    expect(mine_row).to_have_count(0)

    # Force release asks first: dismissing keeps the claim, accepting drops it.
    questions: list[str] = []

    def answer(yes: bool) -> Any:
        def handle(dialog: Any) -> None:
            questions.append(dialog.message)
            dialog.accept() if yes else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    row.locator("button.force").click()
    page.wait_for_timeout(300)
    expect(row).to_have_count(1)
    expect(page.locator("#notice")).not_to_contain_text(f"released {intent['intent_id']}")
    assert intent["intent_id"] in [lk["intent_id"] for lk in locks(broker)]
    page.once("dialog", answer(True))
    row.locator("button.force").click()
    expect(row).to_have_count(0)
    assert len(questions) == 2
    assert "claude-api" in questions[1] and "src/api/" in questions[1]
    assert locks(broker) == []
    expect(page.locator("#conflicts-section")).to_be_hidden()
    expect(page.locator("#events li.forced").first).to_contain_text(
        "ana force-released claude-api's"
    )
    told = [m["text"] for m in agent.call(Api.inbox())["messages"]]
    assert any("force-released your claim" in t for t in told)


def test_page_waits_for_data_dates_old_events_and_drops_settled_refusals(
    broker: Broker, browser_page: Any, tmp_path: Path
) -> None:
    """Until the first state arrives the page says it is loading (no empty
    tables beside a "live" badge); an event of another day shows its date; a
    refusal whose peer left goes from the list; nothing on the page is a 401."""
    from playwright.sync_api import expect

    # Two days back: older than today, younger than retention's window (3 days),
    # which would compact it away at the broker's first sweep.
    two_days_ago = time.time() - 2 * 86400
    broker.stop()  # a record from two days ago, as the history would hold it
    with sqlite3.connect(broker.home / "lockd.db") as db:
        db.execute(
            "INSERT INTO intent_events (at, event, repo_id, detail) VALUES (?, 'released', ?, ?)",
            (two_days_ago, REPO, '{"pattern": "/old/", "mode": "exclusive"}'),
        )
    db.close()
    broker.start()
    holder = broker.register(name="claude-api", kind="agent")
    holder.call(Api.announce(REPO, ["src/api/"], "rewrite auth"))
    codex = broker.register(name="codex-web", kind="agent")
    assert not codex.call(Api.announce(REPO, ["src/api/auth.py"], "fix login"))["granted"]

    page = browser_page
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status >= 400 else None)
    held: list[Any] = []
    page.route(  # the first state waits for us; any later one goes through
        "**/dashboard/api/state", lambda route: route.continue_() if held else held.append(route)
    )
    page.goto(dashboard_url(broker, tmp_path))
    wait_for(lambda: page.wait_for_timeout(20) or held, timeout=10)  # lets playwright route it
    expect(page.locator("#loading")).to_be_visible()
    expect(page.locator("main")).to_be_hidden()
    expect(page.locator("#status")).not_to_have_text("live")
    held[0].continue_()
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator("#loading")).to_be_hidden()
    expect(page.locator("#peers tr", has_text="claude-api")).to_be_visible()

    old = page.locator("#events li", has_text="released /old/").locator("time")
    day = datetime.datetime.fromtimestamp(two_days_ago)
    expect(old).to_contain_text(day.strftime("%b"))
    expect(old).to_contain_text(str(day.day))
    today = page.locator("#events li.refused time").first
    expect(today).not_to_contain_text(datetime.datetime.now().strftime("%b"))

    conflict = page.locator("#conflicts li.conflict")
    expect(conflict).to_contain_text("codex-web")
    codex.call(Api.goodbye())  # nobody waits for those files any more
    expect(page.locator("#conflicts-section")).to_be_hidden()
    expect(page.locator("#claims tr.contested")).to_have_count(0)
    assert refused == [], refused  # the favicon among them: asked for by every page


def test_page_words_times_as_the_cli_and_names_the_repo_of_each_event(
    broker: Broker, browser_page: Any, tmp_path: Path
) -> None:
    """Ages and times left read as `lockd locks` says them (90 s ago is 1m, not 2m; 1h27m
    left is not 1h); an event names its repo once the page shows more than one."""
    from playwright.sync_api import expect

    here, there = tmp_path / "web", tmp_path / "infra"
    here.mkdir(), there.mkdir()
    web, infra = identify(str(here)).repo_id, identify(str(there)).repo_id
    page = browser_page
    page.clock.install()  # the page's own clock, moved below; the broker's runs as ever
    page.goto(dashboard_url(broker, here))  # the person works in web, as the agent does
    claude = broker.register(str(here), web, kind="agent", name="claude-api")
    intent = claude.call(Api.announce(web, ["src/"], "split routes", ttl_seconds=5400))
    row = page.locator(f'tr[data-intent="{intent["intents"][0]["intent_id"]}"]')
    expect(row.locator("td.ttl")).to_have_text("1h30m")
    granted = page.locator("#events li.granted", has_text="claude-api claimed")
    expect(granted).not_to_contain_text("web:")  # one repo on the page: no need to say which

    page.clock.fast_forward(90_000)
    expect(page.locator("#peers tr", has_text="claude-api").locator("td.age")).to_have_text(
        "1m ago"
    )
    expect(row.locator("td.age")).to_have_text("1m")
    page.clock.fast_forward(90_000)
    expect(row.locator("td.ttl")).to_have_text("1h27m")

    codex = broker.register(str(there), infra, kind="agent", name="codex-ops")
    codex.call(Api.announce(infra, ["deploy/"], "rotate keys"))
    expect(page.locator("#events li.granted", has_text="codex-ops claimed")).to_contain_text(
        "infra: codex-ops claimed"
    )
    expect(granted).to_contain_text("web: claude-api claimed")
    codex.call(Api.goodbye())  # infra is left in the events only: still named, not by its id
    expect(page.locator("#events li.peer_gone", has_text="codex-ops")).to_contain_text("infra: ")
    assert infra not in page.inner_text("#events")


def test_page_refused_without_ticket(broker: Broker, browser_page: Any) -> None:
    page = browser_page
    resp = page.goto(f"{broker.url}/dashboard")
    assert resp.status == 401
    assert "lockd dashboard" in page.inner_text("body")
    assert page.context.request.get(f"{broker.url}/dashboard/api/state").status == 401
    assert page.locator("#claims").count() == 0


def test_used_ticket_cannot_be_reused(
    broker: Broker, chromium: Any, browser_page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url = dashboard_url(broker, tmp_path)
    browser_page.goto(url)
    expect(browser_page.locator("#status")).to_have_text("live")
    other = chromium.new_context()
    try:
        page = other.new_page()
        resp = page.goto(url)
        assert resp.status == 403
        assert "already used" in page.inner_text("body")
        assert other.request.get(f"{broker.url}/dashboard/api/state").status == 401
    finally:
        other.close()
