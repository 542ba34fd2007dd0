"""The live dashboard: a page the broker serves to a person's browser.

Auth follows Jupyter's pattern. `lockd dashboard` asks for a one-time ticket
with the broker token and the person's session credential; the browser trades
the ticket (once, within a minute) for an HttpOnly, SameSite=Strict cookie
bound to that person, so everything the page does acts as that person. The
cookie opens only `/dashboard*` routes, and writes also need the header
`X-Lockd-Dashboard: 1` and a JSON body: a cross-site form cannot send either,
and a cross-site fetch that tries is stopped by CORS (the broker allows none).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import Field

from lockd.broker.registry import DASHBOARD, Registry
from lockd.core import patterns
from lockd.core.errors import LockdError
from lockd.core.models import Peer
from lockd.local import config
from lockd.server import sse
from lockd.server.dashboard_auth import SESSION_SECONDS, DashboardAuth
from lockd.server.routes import Me, Reg
from lockd.server.schemas import Body, IntentId, Line, Text

CONTEST_SECONDS = 1800.0  # a refusal this recent still marks the claims it hit
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "forecast.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The page loads only its own files: no inline script, nothing from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False)


def _auth(request: Request) -> DashboardAuth:
    return request.app.state.dashboard  # type: ignore[no-any-return]


async def person(request: Request, reg: Reg) -> Peer:
    """The peer the cookie was issued for: the page acts as this person."""
    auth = _auth(request)
    peer_id = auth.session(request.cookies.get(auth.cookie))
    peer = reg.peers.get(peer_id) if peer_id else None
    # A cookie outlives its user's token: a revoked user's page stops too.
    if peer is None or not request.app.state.accounts.active(peer.user):
        raise LockdError("unauthorized", "no dashboard session: run `lockd dashboard` again")
    return peer


Person = Annotated[Peer, Depends(person)]


# ---- the ticket (token + session credential) --------------------------------
@router.post("/v1/dashboard/ticket", response_model=None)
async def ticket(request: Request, me: Me) -> dict[str, Any]:
    """A one-time link for the person asking: `lockd dashboard` opens it."""
    value, expires = _auth(request).issue_ticket(me.peer_id)
    return {"ticket": value, "path": f"/dashboard?ticket={value}", "expires_at": expires}


# ---- the page ------------------------------------------------------------------
def _asset(name: str) -> bytes:
    return resources.files("lockd").joinpath("dashboard", name).read_bytes()


def _refused(status: int, why: str) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>lockd dashboard</title>"
        '<link rel="icon" type="image/svg+xml" href="/favicon.ico">'
        f"<h1>lockd dashboard: {'not signed in' if status == 401 else 'link refused'}</h1>"
        f"<p>{why}</p><p>Run <code>lockd dashboard</code> in a terminal to open it.</p></html>"
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


@router.get("/dashboard", response_model=None)
async def page(request: Request, ticket: Line | None = None) -> Response:
    auth = _auth(request)
    signed_in = auth.session(request.cookies.get(auth.cookie)) is not None
    if ticket is not None:
        peer_id = auth.redeem(ticket)
        if peer_id is None and not signed_in:
            return _refused(403, "This link was already used or has expired.")
        # Redirect either way, so the ticket leaves the address bar and history.
        resp = RedirectResponse("/dashboard", status_code=303, headers=PAGE_HEADERS)
        if peer_id is not None:
            resp.set_cookie(
                auth.cookie,
                auth.open_session(peer_id),
                max_age=int(SESSION_SECONDS),
                path="/dashboard",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",  # a team server's cookie never goes in clear
            )
        return resp
    if not signed_in:
        return _refused(401, "This page needs the one-time link that `lockd dashboard` prints.")
    return HTMLResponse(_asset("index.html"), headers=PAGE_HEADERS)


@router.get("/favicon.ico", response_model=None)
async def favicon() -> Response:
    """Open to all (the Guard lets it through): a browser asks for it on every
    page, the refusal page too, and a 401 for it is only noise in the console."""
    return Response(_asset("favicon.svg"), media_type="image/svg+xml", headers=PAGE_HEADERS)


@router.get("/dashboard/{name}", response_model=None)
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise LockdError("not_found", f"no dashboard file {name!r}")
    return Response(_asset(name), media_type=ASSETS[name], headers=PAGE_HEADERS)


# ---- what the page shows -------------------------------------------------------
def repo_label(repo_id: str, roots: list[str]) -> dict[str, str]:
    """A repo as a person knows it: its name, and where it lives (its remote,
    or its directory), instead of an id such as `gitdir:/tmp/x/proj/.git`.
    `roots`: checkouts of it that live peers work in, for ids of other forms."""
    kind, _, rest = repo_id.partition(":")
    if kind == "git":  # a normalized origin URL: github.com/org/proj, file:/srv/proj
        where = rest.removeprefix("file:")
    elif kind == "gitdir":  # a clone's common dir: /home/me/proj/.git, /srv/proj.git
        where = rest.rstrip("/").removesuffix("/.git").removesuffix(".git")
    elif kind == "dir":
        where = rest
    else:
        where = sorted(roots)[0] if roots else ""
    name = where.rstrip("/").rpartition("/")[2] or where or repo_id
    return {"name": name, "where": where}


def _repos(
    reg: Registry, peers: list[Peer], claims: list[dict[str, Any]], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """Labels for every repo the page names: an event's line too names its repo."""
    roots: dict[str, set[str]] = {}
    for peer in peers:
        roots.setdefault(peer.repo_id, set()).add(peer.repo_root)
    shown = {p.repo_id for p in peers} | {c["repo"] for c in claims}
    shown |= {e["repo"] for e in events if isinstance(e.get("repo"), str)}
    return {r: repo_label(r, sorted(roots.get(r, ()))) for r in sorted(shown)}


def _name(reg: Registry, peer_id: str | None, fallback: str = "someone") -> str:
    name = reg.name_of(peer_id) if peer_id else None
    return name or peer_id or fallback


# The page's words for an event; refusals, commits and messages need more than a template.
CLAIM_WORDS = {
    "granted": "{who} claimed {pattern} ({mode}): {reason}",
    "released": "{who} released {pattern}",
    "forced": "{actor} force-released {who}'s {pattern}",
    "expired": "{who}'s claim {pattern} expired",
    "peer_gone": "{who}'s claim {pattern} was released: the session is gone",
}
BUS_WORDS = {
    "peer_joined": "{peer[name]} joined ({peer[client]})",
    "peer_left": "{peer[name]} left ({cause})",
    "summary": "{peer[name]} is now: {summary}",
}


def describe(reg: Registry, event: dict[str, Any]) -> dict[str, Any] | None:
    """One line of the page's feed, from a recorded claim event (`event`) or a
    bus event (`type`); None for bus events the recorded ones already cover."""
    if "type" not in event:
        text = _claim_text(reg, event)
        return {"at": event["at"], "kind": event["event"], "text": text, "repo": event["repo"]}
    text = _bus_text(reg, event)
    if text is None:
        return None
    repo = event.get("peer", {}).get("repo")
    return {"at": event["at"], "kind": event["type"], "text": text, "repo": repo}


def _claim_text(reg: Registry, event: dict[str, Any]) -> str:
    kind, detail = event["event"], event["detail"]
    who = _name(reg, event["peer_id"])
    if kind == "refused":
        holders = ", ".join(_name(reg, h) for h in detail.get("holders", [])) or "another peer"
        return (
            f"{who} was refused {', '.join(detail.get('patterns', []))} "
            f"({detail.get('mode')}): held by {holders}. Wanted for: {detail.get('reason', '')}"
        )
    if kind in ("commit_touched", "commit_blocked"):
        paths = detail.get("paths", [])
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        actor = _name(reg, event["actor_id"], "a person or unknown process")
        hook = detail.get("hook", "commit")
        verdict = "was refused (block mode)" if kind == "commit_blocked" else "went through"
        return f"{actor}'s {hook} {verdict}, touching claimed files: {shown}"
    return CLAIM_WORDS.get(kind, "{who}: {kind} {pattern}").format(
        who=who,
        kind=kind,
        pattern=detail.get("pattern", ""),
        mode=detail.get("mode"),
        reason=detail.get("reason", ""),
        actor=_name(reg, event["actor_id"]) if kind == "forced" else "",
    )


def _bus_text(reg: Registry, event: dict[str, Any]) -> str | None:
    kind = event["type"]
    if kind == "message":
        direct = not event["to"].startswith("@") and event["recipients"]
        to = _name(reg, event["recipients"][0]) if direct else event["to"]
        return f"{event['from_name']} sent a message to {to}"
    if kind not in BUS_WORDS:
        return None
    peer = event["peer"]
    return BUS_WORDS[kind].format(
        peer=peer, cause=event.get("cause", "gone"), summary=peer.get("summary") or "(no summary)"
    )


def readable(reg: Registry, event: dict[str, Any]) -> dict[str, Any] | None:
    """`describe`, or a plain line for a record it cannot read (written by an
    older broker, or by hand): one bad record never blanks the page."""
    try:
        return describe(reg, event)
    except (KeyError, TypeError, ValueError, AttributeError):
        kind = str(event.get("event") or event.get("type") or "event")
        shown = json.dumps(event.get("detail", event), default=str)[:300]
        at = event.get("at")
        return {
            "at": at if isinstance(at, (int, float)) else 0.0,
            "kind": kind,
            "text": f"{kind} (a record lockd cannot read in full): {shown}",
            "repo": event.get("repo") if isinstance(event.get("repo"), str) else None,
        }


def _still_waits(reg: Registry, event: dict[str, Any], holds: set[tuple[str, ...]]) -> bool:
    """A refused peer still waits while its session lives and it does not
    hold what it asked for (granted since, say as shared beside a shared).
    `holds`: (peer, repo, pattern) of every live claim."""
    peer = reg.peers.get(event["peer_id"])
    if peer is None or not peer.alive:
        return False
    wanted = event["detail"].get("patterns", [])
    return not all((peer.peer_id, event["repo"], p) in holds for p in wanted)


def contested(reg: Registry, history: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Recent refusals whose blocking claims are still held and whose peer
    still waits: the collisions a supervisor may want to settle (talk to
    someone, or force-release)."""
    out, seen = [], set()
    holds: set[tuple[str, ...]] | None = None  # read once, and only if something was refused
    for event in history:
        if event["event"] != "refused" or now - event["at"] > CONTEST_SECONDS:
            continue
        if holds is None:
            holds = {(i.peer_id, i.repo_id, i.pattern) for i in reg.intents.all_live()}
        wanted, mode = event["detail"].get("patterns", []), event["detail"].get("mode", "")
        try:  # a record lockd cannot read (see `readable`) contests nothing
            key = (event["peer_id"], event["repo"], tuple(wanted), mode)
            idx = reg.intents.indexes.get(event["repo"])
            if key in seen or idx is None or not _still_waits(reg, event, holds):
                continue
            seen.add(key)
            pairs = [
                (asked, i)
                for asked, i in idx.conflicts(event["peer_id"], wanted, mode)
                if i.expires_at is None or i.expires_at > now
            ]
            held = {i.intent_id: i for _, i in pairs}
            # One path both claim, as the refusal showed it (one product per refusal).
            example = patterns.example_path(*_first_pair(pairs), idx.ignorecase) if pairs else None
        except (LockdError, TypeError, ValueError, AttributeError):
            continue
        if held:
            out.append(
                {
                    "at": event["at"],
                    "repo": event["repo"],
                    "peer_id": event["peer_id"],
                    "peer_name": _name(reg, event["peer_id"]),
                    "patterns": wanted,
                    "mode": mode,
                    "reason": event["detail"].get("reason", ""),
                    "blocked_by": sorted(held),
                    "example": example,
                }
            )
    return out


def _first_pair(pairs: list[tuple[str, Any]]) -> tuple[str, str]:
    asked, intent = pairs[0]
    return asked, intent.pattern


@router.get("/dashboard/api/state", response_model=None)
async def state(reg: Reg, me: Person) -> dict[str, Any]:
    now = time.time()
    history = await reg.history(200)
    conflicts = contested(reg, history, now)
    hit = {i for c in conflicts for i in c["blocked_by"]}
    claims = [{**c, "contested": c["intent_id"] in hit} for c in reg.intents.locks(viewer=me)]
    feed = [readable(reg, e) for e in history[:100]] + [readable(reg, e) for e in reg.recent]
    events = sorted((e for e in feed if e), key=lambda e: e["at"], reverse=True)[:100]
    peers = sorted(reg.live_peers(), key=lambda p: (p.repo_id, p.name))
    return {
        "now": now,
        "me": {"peer_id": me.peer_id, "name": me.name},
        "peers": [{**p.public(), "me": p.peer_id == me.peer_id} for p in peers],
        "repos": _repos(reg, peers, claims, events),
        "claims": claims,
        "conflicts": conflicts,
        "events": events,
    }


@router.get("/dashboard/api/forecast", response_model=None)
async def forecast(reg: Reg, me: Person) -> dict[str, Any]:
    """The forecast panel: per repo, who changed what, the overlaps, the
    verdicts of the merge forecast (computed by the sessions' clients)."""
    repos = []
    for repo_id in reg.activity.repos():
        view = reg.activity.of_repo(repo_id, limit=20)
        view["overlaps"] = reg.activity.overlaps_of(repo_id)
        repos.append(view)
    return {"now": time.time(), "repos": repos}


@router.get("/dashboard/api/events", response_model=None)
async def changes(reg: Reg, me: Person) -> StreamingResponse:
    """Server-sent `changed` nudges; the page re-reads the state on each. A burst
    (a release that wakes watchers, a peer leaving with claims) is one nudge."""
    sub = reg.hub.subscribe(DASHBOARD)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n" + sse.frame("hello", {"peer_id": me.peer_id})
            async for event in sse.pinged(sub):  # ends on overflow: the page re-reads all
                if event is None:
                    yield sse.PING
                    continue
                kinds = {event["type"]}
                await asyncio.sleep(0.05)
                while not sub.queue.empty():
                    kinds.add(sub.queue.get_nowait()["type"])
                yield sse.frame("changed", {"kinds": sorted(kinds)})
        finally:
            sub.close()

    return sse.response(stream())


# ---- what the page does, as the person ----------------------------------------
class ReleaseBody(Body):
    intent_id: IntentId = Field(max_length=32)
    force: bool = False


class SendBody(Body):
    to: Line = Field(min_length=1, max_length=200)
    message: Text = Field(max_length=config.MAX_MESSAGE_BYTES)


@router.post("/dashboard/api/release", response_model=None)
async def release(body: ReleaseBody, reg: Reg, me: Person) -> dict[str, Any]:
    reg.touch(me)
    released = await reg.intents.release(me, intent_ids=[body.intent_id], force=body.force)
    return {"released": released}


@router.post("/dashboard/api/send", response_model=None)
async def send(body: SendBody, reg: Reg, me: Person) -> dict[str, Any]:
    reg.touch(me)
    message, recipients = await reg.send(me, body.to, body.message)
    return {"message_id": message.message_id, "recipients": recipients}
