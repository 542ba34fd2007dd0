"""Structured results of the ten tools, exactly as the contract (docs/CONTRACT.md) fixes them
(and the `forecast` tool, issue 18).
Every result also carries `unread`: messages waiting in this session's inbox,
so an agent whose client drops channel notifications still learns of them."""

from __future__ import annotations

from typing import Any, get_type_hints

from pydantic import BaseModel, create_model

from lockd.core.models import PeerOut


class Shape(BaseModel):
    unread: int = 0
    unread_hint: str | None = None  # set while messages wait: how to read them, and why
    notice: str | None = None  # said once: e.g. that lockd released our claims while we were away


def _model_of(shape: type, name: str) -> type[BaseModel]:
    """A model with a TypedDict's fields (all required), so that a shape the
    core already spells for every layer is not spelled again here."""
    fields: dict[str, Any] = {key: (hint, ...) for key, hint in get_type_hints(shape).items()}
    return create_model(name, __module__=__name__, **fields)


# A peer as list_peers shows it: lockd.core.models.PeerOut, the contract's fields.
PeerInfo = _model_of(PeerOut, "PeerInfo")


class Peers(Shape):
    peers: list[PeerInfo]  # type: ignore[valid-type]


class Sent(Shape):
    message_id: str
    recipients: list[str]
    away: list[str] = []  # recipients whose session is gone: the message waits in their inbox


class Summary(Shape):
    summary: str


class InboxMessage(BaseModel):
    message_id: str
    from_id: str
    from_name: str
    text: str
    sent_at: float
    pushed: bool = False


class Inbox(Shape):
    messages: list[InboxMessage]


class Me(Shape):
    peer_id: str
    name: str
    cwd: str
    repo: str
    summary: str
    push: str = "channel"  # "channel": messages are pushed as notifications; "off": they are not
    push_note: str | None = None  # why push is off, and how messages reach this session instead


class GrantedIntent(BaseModel):
    intent_id: str
    pattern: str
    mode: str
    reason: str
    expires_at: float | None


class Conflict(BaseModel):
    peer_id: str
    peer_name: str
    summary: str
    pattern: str
    mode: str
    reason: str
    since: float
    paths: list[str]  # files of this checkout both claim (none may exist yet)
    requested: str = ""
    intent_id: str = ""
    example: str | None = None  # a path both patterns claim, whether or not it exists


class Announcement(Shape):
    granted: bool
    intents: list[GrantedIntent]
    conflicts: list[Conflict]


class Held(BaseModel):
    """A claim's own fields, first in both views of it: `Lock` and `Claim`."""

    intent_id: str
    peer_id: str
    peer_name: str
    pattern: str
    mode: str
    reason: str


class Lock(Held):
    since: float
    expires_at: float | None
    repo: str
    mine: bool


class Locks(Shape):
    locks: list[Lock]


class Released(Shape):
    released: list[str]


class Claim(Held):
    mine: bool


class Seen(BaseModel):
    """Another live session's activity on a path: it changed the file."""

    peer_id: str
    peer_name: str
    kind: str  # edited | uncommitted | unpushed
    since: float
    overlap: bool = False  # you changed it too
    text: str = ""  # "agent-b has uncommitted changes to this file since 12:04"


class PathClaims(BaseModel):
    path: str
    claims: list[Claim]
    activity: list[Seen] = []


class PathReport(Shape):
    paths: list[PathClaims]


class ActivePath(BaseModel):
    path: str
    kind: str
    since: float


class ActivePeer(BaseModel):
    peer_id: str
    name: str
    checkout: str
    branch: str
    paths: list[ActivePath]
    more: int = 0  # paths beyond those listed


class PairVerdict(BaseModel):
    a: str
    b: str
    conflict: bool
    paths: list[str]  # the files that would conflict
    note: str = ""
    at: float


class Forecast(Shape):
    peers: list[ActivePeer]
    verdicts: list[PairVerdict]
