"""The change feed between brokers sharing one database: what a transaction
changed, one frozen record per kind of change, and the one codec for the text
that carries it (PostgreSQL's pg_notify, written by lockd/store/tx.py, read by
lockd/store/postgres.py and applied by lockd/broker/registry.py and intents.py).

A notice must stay under PostgreSQL's NOTIFY limit (8000 bytes), so `encode`
drops what a reader can fetch by id when the whole change does not fit: a
message and its recipients, an intent put. Whatever is left (ids, a repo, a
version) must fit, or the change cannot be announced at all: `encode` then
refuses it, which fails the write that made it rather than leaving the other
brokers unaware.

The text is JSON with short keys, the same since the feed began: `r` the
replica that committed it, `k` the kind, then the kind's own fields."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from lockd.core.errors import LockdError
from lockd.core.models import Intent, Message

NOTIFY_LIMIT = 7900  # bytes; PostgreSQL refuses NOTIFY payloads of 8000 bytes or more


@dataclass(frozen=True)
class MessageSent:
    """A message stored, and who it is for; without `message` and
    `recipients` (too big to carry) the reader fetches them by id."""

    KIND: ClassVar[str] = "m"
    message_id: int  # the row's id: `Message.message_id` is "m<id>"
    message: Message | None = None
    recipients: tuple[str, ...] | None = None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.message_id}
        if self.message is not None and self.recipients is not None:
            out |= {"to": list(self.recipients), "m": self.message.as_dict()}
        return out

    @classmethod
    def parse(cls, data: dict[str, Any]) -> MessageSent:
        carried, to = data.get("m"), data.get("to")
        if carried is None or to is None:
            return cls(int(data["id"]))
        return cls(int(data["id"]), Message(**carried), tuple(str(r) for r in to))

    def light(self) -> MessageSent:
        return MessageSent(self.message_id)


@dataclass(frozen=True)
class PeerChanged:
    """A peer registered, changed or declared gone: readers re-read its row."""

    KIND: ClassVar[str] = "p"
    peer_id: str

    def fields(self) -> dict[str, Any]:
        return {"id": self.peer_id}

    @classmethod
    def parse(cls, data: dict[str, Any]) -> PeerChanged:
        return cls(str(data["id"]))

    def light(self) -> PeerChanged:
        return self


@dataclass(frozen=True)
class ClaimPut:
    """An intent granted or updated in a repo, bumping its claim version to
    `version` (None: from a broker older than claim versions). Without
    `intent` (too big to carry) the reader fetches it by `intent_id`."""

    KIND: ClassVar[str] = "c"
    repo_id: str
    version: int | None
    ignorecase: bool  # the repo's case rule (lockd/store/tx.py `claim_state`)
    intent_id: str
    intent: Intent | None = None

    def fields(self) -> dict[str, Any]:
        if self.intent is None:
            return _claim(self, put_id=self.intent_id)
        return _claim(self, put=self.intent.as_dict())

    def light(self) -> ClaimPut:
        return replace(self, intent=None)


@dataclass(frozen=True)
class ClaimDropped:
    """An intent released in a repo, bumping its claim version to `version`."""

    KIND: ClassVar[str] = "c"
    repo_id: str
    version: int | None
    ignorecase: bool
    intent_id: str

    def fields(self) -> dict[str, Any]:
        return _claim(self, drop=self.intent_id)

    def light(self) -> ClaimDropped:
        return self


@dataclass(frozen=True)
class TokensChanged:
    """A user's token created or revoked: readers re-read the users."""

    KIND: ClassVar[str] = "u"
    name: str

    def fields(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def parse(cls, data: dict[str, Any]) -> TokensChanged:
        return cls(str(data["name"]))

    def light(self) -> TokensChanged:
        return self


ClaimChange = ClaimPut | ClaimDropped
Change = MessageSent | PeerChanged | ClaimPut | ClaimDropped | TokensChanged


@dataclass(frozen=True)
class Notice:
    """A change as it arrives, with the replica that committed it."""

    origin: str
    change: Change


def _claim(change: ClaimChange, **which: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"repo": change.repo_id}
    if change.version is not None:
        out["v"] = change.version
    return out | {"ic": change.ignorecase, **which}


def _parse_claim(data: dict[str, Any]) -> ClaimChange:
    repo, ignorecase = str(data["repo"]), bool(data.get("ic"))
    version = None if data.get("v") is None else int(data["v"])
    if "put" in data:
        intent = Intent(**data["put"])
        return ClaimPut(repo, version, ignorecase, intent.intent_id, intent)
    if "put_id" in data:
        return ClaimPut(repo, version, ignorecase, str(data["put_id"]))
    return ClaimDropped(repo, version, ignorecase, str(data["drop"]))


# kind -> how to read its fields
_PARSERS: dict[str, Callable[[dict[str, Any]], Change]] = {
    MessageSent.KIND: MessageSent.parse,
    PeerChanged.KIND: PeerChanged.parse,
    ClaimPut.KIND: _parse_claim,  # a put or a drop, by its fields
    TokensChanged.KIND: TokensChanged.parse,
}


def _text(origin: str, change: Change) -> str:
    return json.dumps({"r": origin, "k": change.KIND, **change.fields()}, ensure_ascii=False)


def encode(origin: str, change: Change, limit: int = NOTIFY_LIMIT) -> str:
    """The notice's text, at most `limit` bytes of UTF-8: the whole change,
    else the change without what a reader can fetch by id."""
    text = _text(origin, change)
    if len(text.encode()) <= limit:
        return text
    light = change.light()
    text = _text(origin, light)
    size = len(text.encode())
    if size <= limit:
        return text
    name, value = max(
        ((k, v) for k, v in light.fields().items() if isinstance(v, str)),
        key=lambda kv: len(kv[1].encode()),
    )
    raise LockdError(
        "too_large",
        f"this change cannot be announced to the other brokers on the database: its notice "
        f"is {size} bytes even with ids only, over PostgreSQL's NOTIFY limit ({limit}), "
        f"because its {name} is {len(value.encode())} bytes ({value[:60]!r}...): use a "
        "shorter one",
    )


def _unreadable(text: str, why: str) -> LockdError:
    return LockdError(
        "internal",
        f"unreadable change notice {text[:200]!r}: {why}; is a broker of another lockd "
        "version on this database?",
    )


def decode(text: str) -> Notice:
    """A notice's text as the record it carries. A notice this broker cannot
    read (another version's, or damaged) raises LockdError: the reader must
    then re-read everything rather than miss the change."""
    try:
        data = json.loads(text)
        kind, origin = data["k"], str(data["r"])
    except (ValueError, TypeError, LookupError) as exc:
        raise _unreadable(text, f"not a notice ({type(exc).__name__}: {exc})") from None
    parse = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        known = ", ".join(sorted(_PARSERS))
        raise _unreadable(text, f"unknown kind {kind!r} (this broker reads {known})")
    try:
        return Notice(origin, parse(data))
    except (ValueError, TypeError, LookupError) as exc:
        raise _unreadable(text, f"a {kind!r} notice without its fields ({exc!r})") from None
