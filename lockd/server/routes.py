"""Thin HTTP routes: parse, call the registry, shape the answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from lockd import __version__
from lockd.broker.accounts import Accounts
from lockd.broker.registry import Registration, Registry
from lockd.broker.repos import RepoIds
from lockd.core.errors import LockdError
from lockd.core.models import LOCAL_USER, SCOPES, Peer
from lockd.local import config
from lockd.server import schemas, sse
from lockd.server.security import USER_KEY

# Handlers return plain JSON-able dicts: skipping FastAPI's response-model
# validation of them halves the broker's CPU per request.
# Every refusal has one body shape (ErrorBody, not FastAPI's default
# HTTPValidationError for 422): the OpenAPI document says so for all 4xx.
router = APIRouter(
    default_response_class=JSONResponse,
    responses={"4XX": {"model": schemas.ErrorBody, "description": "Refused: the body says why"}},
)


async def registry(request: Request) -> Registry:
    return request.app.state.registry  # type: ignore[no-any-return]


Reg = Annotated[Registry, Depends(registry)]


async def repo_ids(request: Request) -> RepoIds:
    return request.app.state.repos  # type: ignore[no-any-return]


# Every repo id a request gives is one key of its repo: the routes speak of
# the repo by the id its aliases name (lockd/broker/repos.py).
Repos = Annotated[RepoIds, Depends(repo_ids)]


async def _repo(repos: RepoIds, repo_id: str | None) -> str | None:
    return await repos.canonical(repo_id) if repo_id else repo_id


def caller(request: Request) -> str | None:
    """The user whose token the Guard accepted (None on open routes)."""
    return request.scope.get(USER_KEY)


def admin(request: Request) -> Accounts:
    """Token management: only the broker machine's own token, never a user's."""
    if caller(request) != LOCAL_USER:
        raise LockdError(
            "forbidden",
            f"user {caller(request)!r} may not manage tokens or stop the broker: run this on "
            "the broker's machine, with its own token (LOCKD_HOME/token)",
        )
    return request.app.state.accounts  # type: ignore[no-any-return]


Admin = Annotated[Accounts, Depends(admin)]


async def session(
    request: Request, x_lockd_session: Annotated[str | None, Header()] = None
) -> Peer:
    reg: Registry = request.app.state.registry
    peer = await reg.authenticate(x_lockd_session)
    user = caller(request)
    if user is not None and peer.user != user:
        raise LockdError(
            "forbidden",
            f"this session belongs to user {peer.user!r}, not {user!r}: register your own",
        )
    await reg.revive(peer)  # declared dead, yet here: alive again, once that is stored
    reg.touch(peer)
    return peer


Me = Annotated[Peer, Depends(session)]


async def optional_session(
    request: Request, x_lockd_session: Annotated[str | None, Header()] = None
) -> Peer | None:
    return await session(request, x_lockd_session) if x_lockd_session else None


MaybeMe = Annotated[Peer | None, Depends(optional_session)]


@router.get("/health", include_in_schema=False, response_model=None)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/v1/status", response_model=None)
async def status(request: Request, reg: Reg) -> dict[str, Any]:
    return {
        "requests": request.app.state.requests.total,
        "version": __version__,
        "pid": os.getpid(),
        "started_at": reg.started_at,
        # The server's paths are the admin's business, not every user's.
        "home": str(config.home()) if caller(request) == LOCAL_USER else None,
        "peers": len(reg.live_peers()),
        "intents": len(reg.intents.all_live()),
        "streams": sum(reg._streams.values()),
        "replica": getattr(reg.store, "replica_id", None),
    }


@router.get("/v1/status/store", response_model=None)
async def store_status(request: Request, reg: Reg) -> dict[str, Any]:
    """What the broker keeps (`lockd status`): the store's size and rows, the
    caches' memory, retention's last run."""
    report = await reg.retention.report()
    if caller(request) != LOCAL_USER:
        report["store"]["path"] = None  # the server's paths are the admin's business
    return report


@router.post("/v1/shutdown", response_model=None)
async def shutdown(request: Request, _: Admin) -> dict[str, str]:
    request.app.state.shutdown()
    return {"status": "stopping"}


# ---- peers -----------------------------------------------------------------
@router.post("/v1/peers", response_model=None)
async def register(
    body: schemas.RegisterBody, reg: Reg, repos: Repos, request: Request
) -> dict[str, Any]:
    user = caller(request) or LOCAL_USER
    fields = body.model_dump(exclude={"repo_keys"})
    fields["repo_id"] = await repos.link(body.repo_id, body.repo_keys)
    peer, credential = await reg.register(Registration(**fields, user=user))
    lapsed = await reg.lapse_report(peer)
    return {**peer.public(), "credential": credential, "lapsed": lapsed}


@router.get("/v1/peers/me", response_model=None)
async def whoami(me: Me, reg: Reg) -> dict[str, Any]:
    lapsed = await reg.lapse_report(me)
    return {**me.public(), "unread": await reg.unread_count(me), "lapsed": lapsed}


@router.post("/v1/peers/me/heartbeat", response_model=None)
async def heartbeat(me: Me, reg: Reg) -> dict[str, Any]:
    await reg.revive(me)
    lapsed = await reg.lapse_report(me)  # claims released while it was gone: say so
    return {"peer_id": me.peer_id, "unread": await reg.unread_count(me), "lapsed": lapsed}


@router.delete("/v1/peers/me", response_model=None)
async def goodbye(me: Me, reg: Reg) -> dict[str, Any]:
    await reg.unregister(me)
    return {"peer_id": me.peer_id, "alive": False}


@router.put("/v1/peers/me/summary", response_model=None)
async def set_summary(body: schemas.SummaryBody, me: Me, reg: Reg) -> dict[str, str]:
    return {"summary": await reg.set_summary(me, body.summary)}


@router.get("/v1/peers", response_model=None)
async def list_peers(
    reg: Reg,
    repos: Repos,
    me: MaybeMe,
    scope: schemas.Line = "machine",
    cwd: schemas.PathText | None = None,
    repo: schemas.PathText | None = None,
) -> dict[str, Any]:
    cwd = cwd or (me.cwd if me else "")
    repo = await _repo(repos, repo) or (me.repo_id if me else "")
    if scope not in SCOPES:
        raise LockdError("invalid", f"scope {scope!r} is not one of: {', '.join(SCOPES)}")
    if scope != "machine" and not (cwd if scope == "directory" else repo):
        where = (
            "cwd=<directory>"
            if scope == "directory"
            else "repo=<repo id> (`lockd whoami --json` prints it)"
        )
        raise LockdError(
            "invalid", f"scope {scope!r} needs {where} in the query, or an X-Lockd-Session"
        )
    peers = reg.in_scope(scope, cwd, repo)
    return {"peers": [p.public() for p in peers if not me or p.peer_id != me.peer_id]}


# ---- messages ----------------------------------------------------------------
@router.post("/v1/messages", response_model=None)
async def send(body: schemas.SendBody, me: Me, reg: Reg) -> dict[str, Any]:
    message, recipients = await reg.send(me, body.to, body.message, body.request_key)
    return {
        "message_id": message.message_id,
        "recipients": recipients,
        "sent_at": message.sent_at,
        # Gone for now: the message waits in their inbox until they come back.
        "away": [r for r in recipients if r in reg.peers and not reg.peers[r].alive],
        # People read names: `lockd send` says "sent m3 to bob", not "to p-…".
        "names": {r: reg.peers[r].name for r in recipients if r in reg.peers},
    }


@router.get("/v1/messages", response_model=None)
async def inbox(me: Me, reg: Reg, mark_read: bool = True) -> dict[str, Any]:
    messages = await reg.read_inbox(me, mark_read=mark_read)
    return {"messages": [m.as_dict() for m in messages]}


@router.post("/v1/messages/ack", response_model=None)
async def ack(body: schemas.IdsBody, me: Me, reg: Reg) -> dict[str, int]:
    return {"acknowledged": await reg.ack(me, body.message_ids)}


@router.post("/v1/messages/read", response_model=None)
async def mark_read(body: schemas.IdsBody, me: Me, reg: Reg) -> dict[str, int]:
    return {"read": await reg.mark_read(me, body.message_ids)}


@router.get("/v1/stream", response_model=None)
async def stream(me: Me, reg: Reg) -> StreamingResponse:
    """Server-sent events: the backlog of unacknowledged messages, then each new
    one as it commits. The peer acknowledges with POST /v1/messages/ack."""
    sub, backlog = await reg.open_stream(me)

    async def events() -> AsyncIterator[bytes]:
        try:
            yield sse.frame("hello", {"peer_id": me.peer_id, "backlog": len(backlog)})
            sent = sse.SentIds()
            for message in backlog:
                if sent.first_time(message.message_id):
                    yield sse.frame("message", message.as_dict(), message.message_id)
            async for event in sse.pinged(sub):
                if event is None:
                    yield sse.PING
                    continue
                message = event["message"]
                if sent.first_time(message["message_id"]):
                    yield sse.frame("message", message, message["message_id"])
        finally:
            await asyncio.shield(reg.close_stream(me, sub))

    return sse.response(events())


# ---- intents -----------------------------------------------------------------
@router.post("/v1/intents", response_model=None)
async def announce(body: schemas.AnnounceBody, me: Me, reg: Reg, repos: Repos) -> dict[str, Any]:
    request = body.request()
    request = request._replace(repo_id=await repos.canonical(request.repo_id))
    return await reg.intents.announce(me, request)


@router.get("/v1/intents", response_model=None)
async def locks(
    reg: Reg,
    repos: Repos,
    me: MaybeMe,
    repo: schemas.PathText | None = None,
    path: schemas.PathText | None = None,
    peer: schemas.Line | None = None,
) -> Response:
    return _plain_json({"locks": reg.intents.locks(await _repo(repos, repo), path, peer, me)})


@router.post("/v1/intents/release", response_model=None)
async def release(body: schemas.ReleaseBody, me: Me, reg: Reg, repos: Repos) -> dict[str, Any]:
    released = await reg.intents.release(
        me, await _repo(repos, body.repo_id), body.intent_ids, body.patterns, body.force
    )
    return {"released": released}


@router.post("/v1/repos", response_model=None)
async def repo(body: schemas.RepoBody, repos: Repos) -> dict[str, str]:
    """The repo id the broker knows a checkout by, its new keys kept: what a
    client that registers nothing asks before it lists a repo's peers."""
    return {"repo_id": await repos.link(body.repo_id, body.repo_keys)}


@router.post("/v1/check", response_model=None)
async def check(body: schemas.CheckBody, reg: Reg, repos: Repos, me: MaybeMe) -> Response:
    viewer = me or (reg.find_peer(body.viewer) if body.viewer else None)
    if viewer is None and body.viewer:  # a check as nobody would call the viewer's claims others'
        raise LockdError(
            "not_found",
            f"viewer {body.viewer!r} is no peer this broker knows: name one by id or name "
            "(lockd peers), or leave it out",
        )
    repo_id = await repos.canonical(body.repo_id)
    if body.repo_keys:  # a hook's checkout may have gained a key (a remote, a first commit)
        with contextlib.suppress(LockdError):  # a check answers, even if it cannot write
            repo_id = await repos.link(body.repo_id, body.repo_keys)
    paths = reg.intents.check(repo_id, body.paths, viewer)
    seen = reg.activity.on_paths(repo_id, [e["path"] for e in paths], viewer)
    for entry, activity in zip(paths, seen, strict=True):
        entry["activity"] = activity  # what other live sessions changed there
    return _plain_json({"paths": paths})


def _plain_json(data: dict[str, Any]) -> Response:
    """Large answers of plain JSON types skip FastAPI's `jsonable_encoder`,
    which took half of a 1,000-path check."""
    return Response(json.dumps(data, separators=(",", ":")), media_type="application/json")


# ---- activity and the merge forecast ----------------------------------------
@router.post("/v1/activity", response_model=None)
async def report_activity(body: schemas.ActivityBody, me: Me, reg: Reg) -> dict[str, Any]:
    """What this session changed: files its client edited, or its checkout's
    git scan. Repo-relative paths only, never contents."""
    scan = body.scan
    return reg.activity.report(
        me,
        edited=body.edited,
        git=scan.kinds() if scan else None,
        total=scan.total if scan else None,
        branch=scan.branch if scan else None,
    )


@router.get("/v1/activity", response_model=None)
async def activity(
    reg: Reg, repos: Repos, me: MaybeMe, repo: schemas.PathText | None = None
) -> Response:
    repo = await repos.canonical(repo) if repo else (me.repo_id if me else None)
    if not repo:
        raise LockdError("invalid", "give repo=<repo id>, or call with a session")
    return _plain_json(reg.activity.of_repo(repo))


@router.post("/v1/forecast", response_model=None)
async def forecast(body: schemas.ForecastBody, me: Me, reg: Reg, repos: Repos) -> dict[str, Any]:
    """Verdicts a client computed where the checkouts are: only they travel."""
    verdicts = [v.model_dump() for v in body.verdicts]
    repo_id = await repos.canonical(body.repo_id)
    return {"accepted": reg.activity.put_verdicts(me, repo_id, verdicts)}


@router.post("/v1/notices/commit", response_model=None)
async def commit_notice(
    body: schemas.CommitNoticeBody, reg: Reg, repos: Repos, request: Request
) -> dict[str, Any]:
    """A hook saw a commit or push touch these claims: tell their holders.
    Accepted at once, done right after: the hook's verdict does not wait on it."""
    reg.later(
        reg.intents.commit_touched(
            await repos.canonical(body.repo_id),
            body.intent_ids,
            body.paths,
            body.hook,
            body.committer,
            caller(request) or LOCAL_USER,
            body.blocked,
        )
    )
    return {"accepted": True}


@router.get("/v1/events", response_model=None)
async def history(
    reg: Reg,
    repos: Repos,
    repo: schemas.PathText | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"events": await reg.history(limit, await _repo(repos, repo)), "now": time.time()}


# ---- users' tokens (a team server; the broker machine's token only) --------
@router.post("/v1/tokens", response_model=None)
async def create_token(body: schemas.TokenBody, accounts: Admin) -> dict[str, Any]:
    """The token is in this answer and nowhere else: only its hash is stored."""
    return await accounts.create(body.name, by=LOCAL_USER)


@router.delete("/v1/tokens/{name}", response_model=None)
async def revoke_token(name: schemas.Line, accounts: Admin) -> dict[str, Any]:
    return await accounts.revoke(name, by=LOCAL_USER)


@router.get("/v1/tokens", response_model=None)
async def list_tokens(accounts: Admin) -> dict[str, Any]:
    return {"users": await accounts.listing()}
