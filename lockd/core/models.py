"""Data shapes shared by every layer: what the broker stores and what the
wire carries. Plain dataclasses and TypedDicts so that the light adapters
(hooks, CLI) never import pydantic."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict

Mode = Literal["exclusive", "shared"]
Scope = Literal["machine", "directory", "repo"]
MODES: tuple[str, ...] = ("exclusive", "shared")
SCOPES: tuple[str, ...] = ("machine", "directory", "repo")
BROADCASTS = {"@machine": "machine", "@directory": "directory", "@repo": "repo"}
# Who acts with the broker machine's own token (LOCKD_HOME/token), as opposed
# to a team server's per-user tokens (`lockd token create NAME`).
LOCAL_USER = "local"


@dataclass
class Peer:
    peer_id: str
    name: str
    kind: str  # "agent" | "person"
    client: str
    host: str
    cwd: str
    repo_id: str
    repo_root: str
    summary: str = ""
    pid: int | None = None
    pid_start: float | None = None
    agent_pid: int | None = None
    agent_start: float | None = None
    created_at: float = 0.0
    last_seen: float = 0.0
    alive: bool = True
    user: str = LOCAL_USER  # whose token registered it: every action is theirs

    def public(self) -> dict[str, Any]:
        """The shape `list_peers` and `whoami` show."""
        return {
            "peer_id": self.peer_id,
            "name": self.name,
            "kind": self.kind,
            "client": self.client,
            "cwd": self.cwd,
            "repo": self.repo_id,
            "summary": self.summary,
            "last_seen": self.last_seen,
            "agent_pid": self.agent_pid,
            "user": self.user,
        }


@dataclass
class Intent:
    intent_id: str
    peer_id: str
    repo_id: str
    pattern: str
    mode: str
    reason: str
    since: float
    expires_at: float | None = None
    notify_when_free: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Message:
    message_id: str
    from_id: str
    from_name: str
    text: str
    sent_at: float
    to: str = ""
    kind: str = "message"  # "message" | "system" (notices from the broker)
    pushed: bool = False
    meta: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PeerOut(TypedDict):
    """A peer as `list_peers` promises it; the MCP result model is made from it."""

    peer_id: str
    name: str
    cwd: str
    repo: str
    summary: str
    last_seen: float


def intent_key(n: int) -> str:
    return f"i{n}"


def message_key(n: int) -> str:
    return f"m{n}"


def parse_key(text: str, prefix: str) -> int | None:
    """`i17` -> 17; also accepts a bare number. None when not of that form:
    ASCII digits only (`isdigit()` alone takes `²`, which `int()` refuses) and
    within the databases' 64-bit ids."""
    text = text.strip()
    if text.startswith(prefix):
        text = text[len(prefix) :]
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    n = int(text)
    return n if n < 2**63 else None
