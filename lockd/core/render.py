"""Claims and times as text, written once for each reader: a person at a
terminal (`lockd claim`, `lockd check`, the git hooks) and an agent about to
edit (the guard). Pure: the time is an argument. The dashboard words its own
feed (lockd.server.dashboard); MCP tools answer in structured results.

A next step that a message or an error suggests is named in its reader's own
words (`steps`): `lockd peers` at a terminal, list_peers to an agent, the
Peers table on the dashboard, the route to a script."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the git hook renders with this: typing stays out
    from typing import Any

UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def age(since: float | None, now: float) -> str:
    """How long ago, in its largest unit, rounded down: `3m`; `-` for never."""
    return "-" if not since else _in_units(max(0, int(now - since)))


def remaining(expires_at: float | None, now: float) -> str:
    """Time left as durations are typed, two units at most, rounded in the
    smaller: a fresh 8 h claim shows 8h (not 7h59m), `--ttl 1h30m` 1h30m."""
    if not expires_at:
        return "never"
    left = max(0.0, expires_at - now)
    for (big, size), (small, step) in zip(UNITS, (*UNITS[1:], ("s", 1)), strict=True):
        if left >= size - step / 2:
            whole, rest = divmod(round(left / step), size // step)
            return f"{whole}{big}" + (f"{rest}{small}" if rest else "")
    return f"{round(left)}s"


def _in_units(seconds: int) -> str:
    for unit, size in UNITS:
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---- for a person ---------------------------------------------------------------
def holder(claim: dict[str, Any], now: float) -> str:
    """`bob (login flow) with /src/api/ [exclusive, 3m ago]: fixing login`."""
    summary = f" ({claim['summary']})" if claim.get("summary") else ""
    return (
        f"{claim['peer_name']}{summary} with {claim['pattern']} "
        f"[{claim['mode']}, {age(claim['since'], now)} ago]: {claim['reason']}"
    )


def peers(ids: list[str], names: dict[str, str]) -> str:
    """`bob, claude (p-1), claude (p-2)`: peers by name, with the id where
    two of them share it (or the broker sent no name)."""
    shown = [names.get(i) for i in ids]
    return ", ".join(
        name if name and shown.count(name) == 1 else f"{name} ({i})" if name else i
        for i, name in zip(ids, shown, strict=True)
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


# ---- the next step, in each surface's words ------------------------------------------
SURFACES = ("cli", "mcp", "dashboard", "http")
# {placeholder} in a step's template: (terminal, agent's MCP tool, dashboard, HTTP API)
_STEPS = {
    "peers": ("`lockd peers`", "list_peers", "the Peers table", "GET /v1/peers"),
    "locks": ("`lockd locks`", "list_locks", "the Claims table", "GET /v1/intents"),
    "claim": ("`lockd claim`", "announce_intent", "`lockd claim`", "POST /v1/intents"),
    "release": ("`lockd release`", "release_intent", "Release", "POST /v1/intents/release"),
    "send": ("`lockd send`", "send_message", "Send", "POST /v1/messages"),
    # An agent's tools cannot force: it is pointed at the person who can.
    "force": (
        "`lockd release --force ID`",
        "your user's `lockd release --force ID`",
        "Force release",
        'POST /v1/intents/release with "force": true',
    ),
}


def surface_of(kind: str) -> str:
    """Where a peer of this kind reads its messages: a person at the CLI, an agent by MCP."""
    return "cli" if kind == "person" else "mcp"


def steps(template: str, surface: str, to: str | None = None) -> str:
    """`template`'s {peers}, {locks}, {claim}, {release}, {send} as `surface`
    names them; {send_to} is sending to `to`. Only for lockd's own fixed words:
    never pass text a user wrote (its braces would be read as placeholders)."""
    i = SURFACES.index(surface)
    names = {key: words[i] for key, words in _STEPS.items()}
    if to is not None:
        names["send_to"] = _send_to(to, surface)
    return template.format_map(names)


def _send_to(to: str, surface: str) -> str:
    if surface == "cli":
        import shlex

        return f"`lockd send {shlex.quote(to)} MESSAGE`"
    if surface == "mcp":
        return f"send_message(to={to!r})"
    return f"Send to {to}" if surface == "dashboard" else f"POST /v1/messages to {to!r}"


def error_text(message: str, detail: dict[str, Any], surface: str) -> str:
    """An error's message, and the next step its `detail["next"]` names, as `surface` says it."""
    hint = detail.get("next")
    return f"{message}: {steps(hint, surface)}" if isinstance(hint, str) else message
