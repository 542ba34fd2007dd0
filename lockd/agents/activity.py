"""Activity from an agent client's hooks: the files an edit tool just changed,
reported for the session (`report_edit`). Called from the one decision core
(`decisions.check_edit`, after an edit), so every client adapter (Claude
Code's PostToolUse, Cursor's afterFileEdit, Gemini's AfterTool…) reports
alike: the paths in, the other sessions that changed them too out."""

from __future__ import annotations

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError

TYPE_CHECKING = False
if TYPE_CHECKING:  # not on the hook's run-time path
    from typing import Any


def report_edit(client: Client, paths: list[str]) -> list[list[dict[str, Any]]]:
    """Tell the broker this session edited `paths` (repo-relative; a client
    with the session's credential). Returns, per path, the other live
    sessions' activity on it ("agent-b has uncommitted changes to this file
    since 12:04"); the broker tells both sides of a new overlap by message,
    once. A broker that refuses or cannot be reached costs the edit nothing:
    then []."""
    if not client.credential or not paths:
        return []
    try:
        answer = client.call(Api.report_activity(edited=paths))
    except LockdError:
        return []
    return [list(seen) for seen in answer.get("overlaps") or []]


def notes(client: Client, rels: list[str], results: list[dict[str, Any]], after: bool) -> list[str]:
    """What the agent is told of others' changes to the files it edits: from
    the check's answer before an edit; after one, from reporting it."""
    seen = [r.get("activity") or [] for r in results]
    if after:
        seen = report_edit(client, rels) or seen
    return [
        f"lockd: {rel}: {a['text']}"
        for rel, found in zip(rels, seen, strict=False)
        for a in found
        if a.get("text")
    ]
