"""What every agent client's hooks decide, whatever the client: may this
session edit these files, what it claimed for itself after an edit, and what
unread messages to show it. One core; each client's adapter (`guard` and
`inbox` for Claude Code, `codex`, `gemini`, `cursor`) only reads its
payload into `Edit`s and writes a `Verdict` in its client's answer format.

Runs before and after every edit: imports stay light, typing stays out.
"""

from __future__ import annotations

import os
import time

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.local.repo import hook_mode, identify, relpath_in_repo
from lockd.local.sessions import committer, session_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ADVICE = (
    "Do not edit it now: ask the holder with send_message, or call announce_intent "
    "with notify_when_free=true to be told when it is free."
)


class Verdict:
    """The core's answer: `deny` (block the edit, saying why), or `context`
    for the model (a warning, a claim made for it, unread messages)."""

    __slots__ = ("deny", "context")

    def __init__(self, deny: str | None = None, context: str | None = None) -> None:
        self.deny, self.context = deny, context

    def __repr__(self) -> str:
        return f"Verdict(deny={self.deny!r}, context={self.context!r})"


def absolute(path: str, cwd: str | None) -> str:
    return path if os.path.isabs(path) else os.path.join(cwd or os.getcwd(), path)


def _existing_dir(path: str) -> str:
    folder = os.path.dirname(path)
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return folder or "/"


def _by_repo(paths: list[str]) -> dict[str, tuple[Any, list[str]]]:
    """repo id -> (repo, paths relative to it); paths outside any checkout dropped."""
    out: dict[str, tuple[Any, list[str]]] = {}
    for path in dict.fromkeys(paths):
        real = os.path.realpath(path)
        try:
            repo = identify(_existing_dir(real), root_timeout=0.5)  # on every edit: little
            rel = relpath_in_repo(repo, real)
        except LockdError:  # outside a checkout: nothing of ours to guard
            continue
        out.setdefault(repo.repo_id, (repo, []))[1].append(rel)
    return out


def _client(payload: dict[str, Any]) -> tuple[Client, str | None]:
    who = committer(payload, person_fallback=False)  # an agent's edit, never the person's
    client = Client(timeout=2.0, credential=(who or {}).get("credential"))
    return client, None if client.credential else (who or {}).get("peer_id")


def check_edit(
    paths: list[str],
    payload: dict[str, Any],
    before: bool,
    tool: str = "",
    auto_claim: bool = False,
) -> Verdict | None:
    """May this session edit `paths` (absolute)? Before the edit (`before`),
    another peer's exclusive claim in a block-mode checkout denies it and any
    other claim warns; after it, claims warn. With `auto_claim`, files nobody
    claims are claimed for the session (`edited`): after the edit, or before it
    for a client that reports no edit afterwards (Codex's apply_patch). None:
    nothing to say."""
    repos = _by_repo(paths)
    if not repos:
        return None
    client, viewer = _client(payload)
    denials, warnings, unclaimed, changes = [], [], [], []
    for repo_id, (repo, rels) in repos.items():
        results = client.call(Api.check(repo_id, rels, viewer, repo.keys))["paths"]
        if not before or any(r.get("activity") for r in results):
            from lockd.agents import activity  # others' changes, and reporting ours

            changes += activity.notes(client, rels, results, after=not before)
        block = before and hook_mode(repo.root, repo.hook_mode or "") == "block"
        for rel, result in zip(rels, results, strict=False):
            others = [c for c in result["claims"] if not c["mine"]]
            if others:
                from lockd.core import render  # a claimed file only

                lines = [render.for_agent(rel, c) for c in others]
                exclusive = any(c["mode"] == "exclusive" for c in others)
                (denials if block and exclusive else warnings).extend(lines)
            elif not result["claims"]:
                unclaimed.append((repo_id, rel))
    if denials:
        return Verdict(deny="\n".join(denials + warnings + changes) + "\n" + ADVICE)
    notes = ["\n".join(warnings) + "\n" + ADVICE] if warnings else []
    if auto_claim and unclaimed and client.credential:
        notes += edited(client, unclaimed, tool)
    notes += changes
    return Verdict(context="\n".join(notes)) if notes else None


def edited(client: Client, files: list[tuple[str, str]], tool: str) -> list[str]:
    """The session edited these files (repo id, path) that nobody claims:
    claim each for it. The one place an edit by a session is handled, for
    every client (PostToolUse, AfterTool, afterFileEdit)."""
    from lockd.core import patterns  # the auto-claim path only

    notes = []
    by_repo: dict[str, list[str]] = {}
    for repo_id, rel in files:
        by_repo.setdefault(repo_id, []).append(rel)
    for repo_id, rels in by_repo.items():
        got = client.call(
            Api.announce(
                repo_id,
                [patterns.escape("/" + rel) for rel in rels],
                f"auto-claimed: edited with {tool or 'an edit tool'}",
            )
        )
        if got.get("granted"):
            ids = ", ".join(i["intent_id"] for i in got["intents"])
            notes.append(
                f"lockd: claimed {', '.join(rels)} for you ({ids}); "
                "release_intent when you are done with it."
            )
    return notes


def check_commit(command: str, cwd: str, payload: dict[str, Any]) -> Verdict | None:
    """A shell command that runs `git commit`, checked before it runs, as the
    pre-commit hook would (for a client whose shell switches git hooks off):
    the staged files, and with `-a` the changed tracked ones."""
    from lockd.core.patch import git_commit  # shell commands only

    every = git_commit(command)
    if every is None:
        return None
    from lockd.local import git

    try:
        root = git.toplevel(cwd)
        if root is None:
            return None
        paths = git.staged_paths(root) + (git.unstaged_paths(root) if every else [])
    except OSError:
        return None
    verdict = check_edit([os.path.join(root, p) for p in paths], payload, before=True)
    if verdict is None or not verdict.deny:
        return None
    return Verdict(
        deny="lockd: this commit touches files other peers have claimed:\n" + verdict.deny
    )


# ---- the inbox --------------------------------------------------------------------
def format_messages(messages: list[dict[str, Any]]) -> str:
    from lockd.core.render import age  # only when there is something to say

    lines, now = [f"lockd: {len(messages)} unread message(s) from other peers:"], time.time()
    for m in messages:
        # lockd cannot tell whether the client showed a pushed notification
        # (Claude Code drops them without the channel flag, and in -p mode).
        pushed = (
            f' (also pushed as <channel message_id="{m["message_id"]}">: skip it if you saw that)'
            if m.get("pushed")
            else ""
        )
        lines.append(
            f"- [{m['message_id']}, {age(m['sent_at'], now)} ago] {m['from_name']} "
            f"({m['from_id']}){pushed}: {m['text']}"
        )
    lines.append("Reply with the lockd send_message tool (to = the sender's name or id).")
    return "\n".join(lines)


def unread(payload: dict[str, Any] | None) -> str | None:
    """The session's unread messages as text for the model, marked read; None
    when there are none, or no session, or no broker."""
    session = session_for(payload)
    if session is None or not session.get("credential"):
        return None
    try:
        data = Client(credential=session["credential"], timeout=2).call(Api.inbox(mark_read=True))
    except LockdError:
        return None
    messages = data.get("messages") or []
    return format_messages(messages) if messages else None


def joined(*texts: str | None) -> str | None:
    parts = [t for t in texts if t]
    return "\n\n".join(parts) if parts else None
