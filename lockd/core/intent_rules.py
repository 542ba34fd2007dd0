"""What a claim decides, as data: given a repo's index, the request and the
time, a grant (the intents as they will be stored, the events to record) or
a clash (the intents in the way), and for a clash what the refused peer is
answered and what each holder is told. `lockd.broker.intents` stores and
delivers these; nothing here reads a clock, a database or a mailbox.

Pure, not always quick: `decide` and `refuse` may take a while against 10,000
intents (an example path is an automaton product), so the service runs them
on a worker thread, or on a shared store in its write transaction."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lockd.core import patterns, render
from lockd.core.announce import Announce
from lockd.core.errors import LockdError, invalid
from lockd.core.models import MODES, Intent, Peer
from lockd.core.overlap import IntentIndex

MAX_TTL_SECONDS = 30 * 86400
NOTICE_PAIRS = 10  # clashing pattern pairs named in one notice to a holder
# A refusal lists the first this many conflicts (in the order of the patterns)
# and counts them all (`conflicts_total`): 100 floating patterns against 10,000
# claims are 270,000 conflicts (every tree meets every one), an 80 MB answer
# no client or agent could use, built while the broker answers nobody else.
MAX_CONFLICTS_LISTED = 100


@dataclass(frozen=True)
class Event:
    """A row of the claim history to record (the intent's id, if any, is the
    store's to give)."""

    kind: str
    peer_id: str | None
    actor_id: str | None
    repo_id: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Notice:
    """A message from lockd itself to one peer."""

    to: str
    text: str
    meta: dict[str, str]


@dataclass(frozen=True)
class Watch:
    """Tell `peer_id` once nothing blocks these patterns any more (notify_when_free)."""

    peer_id: str
    repo_id: str
    patterns: list[str]
    mode: str


@dataclass(frozen=True)
class Grant:
    request: Announce
    intents: list[Intent]  # per pattern: one the peer holds, renewed (its id), or a new one ("")
    events: list[Event]  # per intent, its "granted" record
    dashboard: dict[str, Any]


@dataclass(frozen=True)
class Clash:
    request: Announce
    clashes: list[list[Intent]]  # per pattern, the other peers' current intents it clashes with


@dataclass(frozen=True)
class Refusal:
    answer: dict[str, Any]  # what the refused peer is told
    event: Event
    notices: list[Notice]  # one per holder in the way
    watch: Watch | None
    dashboard: dict[str, Any]


def checked(request: Announce, max_reason_chars: int) -> Announce:
    """The request with its patterns normalized, or LockdError naming what is wrong."""
    if request.mode not in MODES:
        raise invalid(f"mode {request.mode!r} is not one of: {', '.join(MODES)}")
    if not request.reason.strip():
        raise invalid("reason is empty: say why you claim these files")
    if len(request.reason) > max_reason_chars:
        raise LockdError("too_large", f"reason is over {max_reason_chars} characters")
    ttl = request.ttl_seconds
    if ttl is not None and not 0 < ttl <= MAX_TTL_SECONDS:
        shown = int(ttl) if float(ttl).is_integer() else ttl
        raise invalid(
            f"ttl_seconds={shown} must be more than 0 and at most {MAX_TTL_SECONDS} "
            f"({MAX_TTL_SECONDS // 86400} days)"
        )
    if not request.repo_id:
        raise invalid("repo is empty")
    wanted = patterns.normalize_all(list(request.patterns))
    patterns.check_limits(wanted)
    return request._replace(patterns=wanted)


def current(intent: Intent, now: float) -> bool:
    """Not past its TTL: an expired claim counts for nothing, even in the up to
    one second before the sweeper releases and records it."""
    return intent.expires_at is None or intent.expires_at > now


def clashes(index: IntentIndex, peer_id: str, request: Announce, now: float) -> list[list[Intent]]:
    """Per requested pattern, the other peers' current intents it clashes with."""
    return [
        [held for held in per if current(held, now)]
        for per in index.clashes(peer_id, request.patterns, request.mode)
    ]


def decide(index: IntentIndex, peer_id: str, request: Announce, now: float) -> Grant | Clash:
    """All of the request or none: a clash if any pattern meets another
    peer's current intent, else the grant."""
    found = clashes(index, peer_id, request, now)
    if any(found):
        return Clash(request, found)
    return grant(index, peer_id, request, now)


def grant(index: IntentIndex, peer_id: str, request: Announce, now: float) -> Grant:
    """A pattern the peer holds already is updated (same id, new mode, reason
    and deadline); the others are new intents, held from `now`."""
    expires = now + request.ttl_seconds if request.ttl_seconds else None
    held = {i.pattern: i for i in index if i.peer_id == peer_id}
    terms = {
        "mode": request.mode,
        "reason": request.reason,
        "expires_at": expires,
        "notify_when_free": request.notify_when_free,
    }
    intents = [
        replace(held[p], **terms)
        if p in held
        else Intent("", peer_id, request.repo_id, p, since=now, **terms)
        for p in request.patterns
    ]
    events = [
        Event(
            "granted",
            peer_id,
            peer_id,
            request.repo_id,
            {"pattern": i.pattern, "mode": i.mode, "reason": i.reason},
        )
        for i in intents
    ]
    dashboard = {
        "repo": request.repo_id,
        "event": "granted",
        "peer_id": peer_id,
        "patterns": request.patterns,
    }
    return Grant(request, intents, events, dashboard)


def grant_answer(stored: list[Intent]) -> dict[str, Any]:
    """What the granted peer is told: its intents as stored, with their ids."""
    return {
        "granted": True,
        "intents": [
            {
                "intent_id": i.intent_id,
                "pattern": i.pattern,
                "mode": i.mode,
                "reason": i.reason,
                "expires_at": i.expires_at,
            }
            for i in stored
        ],
        "conflicts": [],
    }


def refuse(clash: Clash, asker: Peer, peers: Mapping[str, Peer], ignorecase: bool) -> Refusal:
    """The refusal of a clash: the first MAX_CONFLICTS_LISTED conflicts listed
    (holders named from `peers`) and all counted; per holder a notice naming
    up to NOTICE_PAIRS clashing pairs; the record; the watch if asked for."""
    request = clash.request
    per_pattern = list(zip(request.patterns, clash.clashes, strict=True))
    pairs = ((requested, held) for requested, per in per_pattern for held in per)
    conflicts = [
        _conflict(requested, held, peers.get(held.peer_id), ignorecase)
        for requested, held in itertools.islice(pairs, MAX_CONFLICTS_LISTED)
    ]
    said = _pairs_named(per_pattern)
    notices = [
        Notice(
            holder_id,
            f"{asker.name} ({asker.peer_id}) wanted files you claim: {listed}. "
            f"Their reason: {request.reason}. "
            + render.steps(
                "Reply with {send_to} or {release} when you are done.",
                render.surface_of(peers[holder_id].kind if holder_id in peers else "agent"),
                to=asker.name,
            ),
            {"event": "claim_refused", "requester_id": asker.peer_id},
        )
        for holder_id, listed in said.items()
    ]
    detail = {
        "patterns": request.patterns,
        "mode": request.mode,
        "reason": request.reason,
        "holders": sorted(said),
    }
    watch = None
    if request.notify_when_free:
        watch = Watch(asker.peer_id, request.repo_id, request.patterns, request.mode)
    answer = {
        "granted": False,
        "intents": [],
        "conflicts": conflicts,
        "conflicts_total": sum(map(len, clash.clashes)),  # all, listed or not
        "watching": request.notify_when_free,
    }
    dashboard = {
        "repo": request.repo_id,
        "event": "refused",
        "peer_id": asker.peer_id,
        "patterns": request.patterns,
        "conflicts": conflicts,
    }
    event = Event("refused", asker.peer_id, asker.peer_id, request.repo_id, detail)
    return Refusal(answer, event, notices, watch, dashboard)


def view(intent: Intent, holder: Peer | None) -> dict[str, Any]:
    """An intent as peers are shown it, its holder named (by id if unknown here)."""
    return {
        "intent_id": intent.intent_id,
        "peer_id": intent.peer_id,
        "peer_name": holder.name if holder else intent.peer_id,
        "summary": holder.summary if holder else "",
        "pattern": intent.pattern,
        "mode": intent.mode,
        "reason": intent.reason,
        "since": intent.since,
    }


def _conflict(
    requested: str, held: Intent, holder: Peer | None, ignorecase: bool
) -> dict[str, Any]:
    return {
        **view(held, holder),
        "requested": requested,
        "paths": [],  # filled by the client from its checkout (lockd.client.intents)
        "example": patterns.example_path(requested, held.pattern, ignorecase),
    }


def _pairs_named(per_pattern: list[tuple[str, list[Intent]]]) -> dict[str, str]:
    """Per holder, in the order first met: its first NOTICE_PAIRS clashing
    pairs, and how many more."""
    named: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for requested, per in per_pattern:
        for held in per:
            counts[held.peer_id] = counts.get(held.peer_id, 0) + 1
            mine = named.setdefault(held.peer_id, [])
            if len(mine) < NOTICE_PAIRS:
                mine.append(f"{requested} ~ your {held.pattern}")
    said = {}
    for holder_id, listed in named.items():
        more = counts[holder_id] - len(listed)
        said[holder_id] = "; ".join(listed) + (f"; and {more} more" if more else "")
    return said


def blocked(index: IntentIndex, peer_id: str, wanted: list[str], mode: str) -> bool:
    """Whether anything another peer holds still clashes with a watch."""
    return any(index.clashes(peer_id, wanted, mode))


def free_notice(peer_id: str, wanted: list[str], repo_id: str, kind: str = "agent") -> Notice:
    """A watcher's news that nothing blocks its patterns any more (in the
    words of where a peer of its `kind` reads it)."""
    return Notice(
        peer_id,
        f"free now: {', '.join(wanted)} in {repo_id} no longer overlaps anyone's claim; "
        + render.steps("{claim} again to take it.", render.surface_of(kind)),
        {"event": "free", "repo": repo_id},
    )


def commit_touched(
    touched: list[tuple[str, list[Intent]]],
    committer_id: str | None,
    committer_name: str,
    hook: str,
    blocked: bool,
    repo_id: str,
) -> tuple[list[Notice], Event, dict[str, Any]]:
    """What a commit (or push) into claimed files causes: per holder, a notice
    naming that holder's files only, never one to the committer; a record
    (`commit_blocked` when the hook refused it, `commit_touched` when it went
    through); and the dashboard's event, the same kind."""
    mine: dict[str, tuple[list[str], list[str]]] = {}  # holder: (its paths, its patterns)
    for path, intents in touched:
        for intent in intents:
            if intent.peer_id == committer_id:
                continue
            paths, pats = mine.setdefault(intent.peer_id, ([], []))
            if path not in paths:
                paths.append(path)
            if intent.pattern not in pats:
                pats.append(intent.pattern)
    what = f"{hook} was refused (block mode)" if blocked else f"{hook} went through"
    kind = "commit_blocked" if blocked else "commit_touched"
    notices = [
        Notice(
            holder,
            f"{committer_name}'s {what}, touching files you claim ({', '.join(pats)}): "
            f"{_listed(paths)}",
            {"event": kind, "repo": repo_id, "hook": hook},
        )
        for holder, (paths, pats) in mine.items()
    ]
    all_paths = [path for path, intents in touched if intents]
    ids = sorted({i.intent_id for _, intents in touched for i in intents})
    detail = {"hook": hook, "blocked": blocked, "intent_ids": ids, "paths": all_paths[:50]}
    event = Event(kind, committer_id, committer_id, repo_id, detail)
    dashboard = {
        "repo": repo_id,
        "event": kind,
        "peer_id": committer_id,
        "paths": all_paths[:50],
        "blocked": blocked,
    }
    return notices, event, dashboard


def _listed(paths: list[str], most: int = 10) -> str:
    more = len(paths) - most
    return ", ".join(paths[:most]) + (f" and {more} more" if more > 0 else "")
