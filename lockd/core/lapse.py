"""What a peer is told when it comes back from being declared gone.

A session frozen past its lease (a laptop asleep, a process stopped, a broker
that could not hear it) is declared gone and its claims are released, so
others can work. When it shows up again it must not carry on as if it still
held them. It is told twice: a notice from lockd in its inbox, stored when the
claims were released (so every path that shows messages shows it), and a
`lapsed` field in the first register, heartbeat or whoami answer after it
came back, built from the recorded release events (so it survives broker
restarts). Pure functions: the registry stores and sends.
"""

from __future__ import annotations

import time
from typing import Any

from lockd.core.models import Intent

# The `peer_gone` event's `why` that the peer chose itself: nothing to tell it.
GOODBYE = "goodbye"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(at))


def _why(cause: str, lease: float) -> str:
    if cause == "heartbeats stopped":
        return f"it sent no heartbeat for {lease:g} s (the lease)"
    if cause == "process gone":
        return "its agent process had exited"
    return cause


def notice_text(released: list[Intent], cause: str, at: float, lease: float) -> str:
    """The inbox notice: which claims, when, why, and what to do now."""
    claims = "; ".join(f"{i.intent_id} {i.pattern} ({i.mode}) in {i.repo_id}" for i in released)
    return (
        f"lockd released your claims at {_when(at)} because this session was declared "
        f"gone: {_why(cause, lease)}. Released: {claims}. Others may have claimed those "
        "files since: check list_locks, then announce_intent again for what you still need."
    )


def report(events: list[dict[str, Any]], lease: float) -> dict[str, Any] | None:
    """The `lapsed` answer field from the `peer_gone` events recorded since the
    peer was last seen; None when it lost no claim (or let them go itself)."""
    gone = [e for e in events if e["detail"].get("why") not in (None, GOODBYE)]
    if not gone:
        return None
    cause = str(gone[0]["detail"]["why"])
    at = float(gone[0]["at"])
    released = [
        {
            "intent_id": e["intent_id"],
            "pattern": e["detail"].get("pattern", ""),
            "mode": e["detail"].get("mode", ""),
            "repo": e["repo"],
            "released_at": e["at"],
        }
        for e in gone
    ]
    claims = "; ".join(f"{r['intent_id']} {r['pattern']} ({r['mode']})" for r in released)
    return {
        "released_at": at,
        "cause": cause,
        "released": released,
        "message": (
            f"lockd declared this session gone at {_when(at)} ({_why(cause, lease)}) and "
            f"released its claims: {claims}. Announce them again if you still need them."
        ),
    }
