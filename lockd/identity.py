"""Which peer is this process? Session files under LOCKD_HOME/sessions record
each agent session's credential, peer id and agent process, so hooks can find
"who is committing" (or whose inbox to print) by walking up their ancestors,
without asking the broker and without heavy imports."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from lockd import config


def sessions_dir() -> Path:
    folder = config.home() / "sessions"
    folder.mkdir(exist_ok=True, mode=0o700)
    return folder


def read_sessions() -> list[dict[str, Any]]:
    out = []
    for path in sessions_dir().glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text() or "{}")
            if data.get("peer_id"):
                out.append(data)
    return out


def session_of_ancestors(pid: int | None = None) -> dict[str, Any] | None:
    """The agent session whose agent process is an ancestor of this process.

    Matching pid *and* start time, so a reused pid never impersonates a peer.
    The nearest ancestor wins when sessions are nested."""
    sessions = read_sessions()
    if not sessions:
        return None
    by_agent = {}
    for s in sessions:
        if s.get("agent_pid"):
            by_agent.setdefault(s["agent_pid"], []).append(s)
    from lockd import liveness  # psutil: imported only when there are sessions to match

    for apid, start in liveness.ancestors(pid or os.getpid()):
        for s in by_agent.get(apid, []):
            if (
                s.get("agent_start") is None
                or start is None
                or abs(s["agent_start"] - start) < 0.05
            ):
                return s
    return None


def committer() -> dict[str, Any] | None:
    """`LOCKD_PEER` (an id or name) overrides; else the ancestor session."""
    override = os.environ.get("LOCKD_PEER", "").strip()
    if override:
        return {"peer_id": override, "override": True}
    return session_of_ancestors()
