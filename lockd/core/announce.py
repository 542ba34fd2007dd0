"""One claim request, as every layer passes it: built by an adapter (from tool
arguments or a command line), made this checkout's by `lockd.client.intents`,
sent as the JSON body of `POST /v1/intents` (`body()`), rebuilt from the
validated body at the HTTP edge (`lockd.server.schemas.AnnounceBody.request`)
and decided by `lockd.core.intent_rules`. Its fields are the body's fields.

A namedtuple, not a dataclass, for the reason `lockd.client.api.Req` is one:
the edit guard announces on its hook path (`lockd guard --auto-claim`), where
`dataclasses` and `typing` would add ~7 ms to every first edit of a file."""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the guard's hook path ~2 ms to import at run time
    from typing import Any

FIELDS = "repo_id patterns reason mode ttl_seconds notify_when_free ignorecase"


class Announce(namedtuple("Announce", FIELDS, defaults=("exclusive", None, False, False))):
    """Claim `patterns` in `repo_id`, all or none, for `reason`: `mode`
    exclusive (I change these) or shared (I depend on them); expiring after
    `ttl_seconds` (None: with the peer); told when they are free if refused
    and `notify_when_free`; compared by the repo's case rule (`ignorecase`)."""

    __slots__ = ()
    repo_id: str
    patterns: list[str]
    reason: str
    mode: str
    ttl_seconds: float | None
    notify_when_free: bool
    ignorecase: bool

    def body(self) -> dict[str, Any]:
        """The JSON body of `POST /v1/intents`."""
        return {**self._asdict(), "patterns": list(self.patterns)}
