"""Claims and times as text, written once for each reader: a person at a
terminal (`lockd claim`, `lockd check`, the git hooks) and an agent about to
edit (the guard). Pure: the time is an argument. The dashboard words its own
feed (lockd.server.dashboard); MCP tools answer in structured results."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the git hook renders with this: typing stays out
    from typing import Any

UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def age(since: float | None, now: float) -> str:
    """How long ago, in its largest unit, rounded down: `3m`; `-` for never."""
    return "-" if not since else _in_units(max(0, int(now - since)), nearest=False)


def remaining(expires_at: float | None, now: float) -> str:
    """Time left, rounded: a fresh 8 h claim shows 8h, not 7h."""
    return "never" if not expires_at else _in_units(max(0, round(expires_at - now)), nearest=True)


def _in_units(seconds: int, nearest: bool) -> str:
    for unit, size in UNITS:
        if seconds >= size:
            return f"{round(seconds / size) if nearest else seconds // size}{unit}"
    return f"{seconds}s"


# ---- for a person ---------------------------------------------------------------
def holder(claim: dict[str, Any], now: float) -> str:
    """`bob (login flow) with /src/api/ [exclusive, 3m ago]: fixing login`."""
    summary = f" ({claim['summary']})" if claim.get("summary") else ""
    return (
        f"{claim['peer_name']}{summary} with {claim['pattern']} "
        f"[{claim['mode']}, {age(claim['since'], now)} ago]: {claim['reason']}"
    )


def path_claim(path: str, claim: dict[str, Any], now: float) -> str:
    """A file someone else claims: the git hook's clash and `lockd check`'s line."""
    return f"{path}: claimed by {holder(claim, now)}"


def conflict(conflict: dict[str, Any], now: float) -> str:
    """What refused a claim: the holder, and some files both sides claim."""
    paths = conflict.get("paths") or []
    if paths:
        both = f" — both claim {', '.join(paths[:5])}"
    elif conflict.get("example"):  # no file of the checkout yet: the broker's example
        both = f" — both claim {conflict['example']}, for one (no such file here yet)"
    else:
        both = ""
    return f"held by {holder(conflict, now)}{both}"


def granted(intent: dict[str, Any], now: float) -> str:
    """`claimed i12 /src/api/ (exclusive, expires in 8h)`."""
    return (
        f"claimed {intent['intent_id']} {intent['pattern']} ({intent['mode']}, expires in "
        f"{remaining(intent['expires_at'], now)})"
    )


# ---- for an agent ------------------------------------------------------------------
def for_agent(path: str, claim: dict[str, Any]) -> str:
    """The guard's line: the holder's id too, so the agent can message it."""
    return (
        f"lockd: {path} is claimed by {claim['peer_name']} ({claim['peer_id']}) with "
        f"{claim['pattern']} [{claim['mode']}]: {claim['reason']}"
    )
