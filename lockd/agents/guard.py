"""`lockd guard --hook`: Claude Code's PreToolUse (and PostToolUse) hook on
file-editing tools. A commit-time warning comes after the work is done; this
one comes before the edit. Answers in the hook protocol's JSON on stdout:
`additionalContext` to warn, `permissionDecision: deny` in block mode.
With `--auto-claim`, a file nobody claims is announced for the session."""

from __future__ import annotations

import json
import os
import sys

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.local.repo import hook_mode, identify, relpath_in_repo
from lockd.local.sessions import committer

TYPE_CHECKING = False
if TYPE_CHECKING:  # not on the guard's run-time path (it runs before every edit)
    import argparse
    from typing import Any

EDIT_TOOLS = {"Edit", "Write", "MultiEdit", "NotebookEdit"}


def target_file(payload: dict[str, Any]) -> str | None:
    tool_input = payload.get("tool_input")
    if not isinstance(tool_input, dict):
        return None
    path = tool_input.get("file_path") or tool_input.get("notebook_path")
    if not isinstance(path, str) or not path:
        return None
    return path if os.path.isabs(path) else os.path.join(payload.get("cwd") or os.getcwd(), path)


def _existing_dir(path: str) -> str:
    folder = os.path.dirname(path)
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return folder or "/"


def _answer(event: str, context: str | None = None, deny: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"hookEventName": event}
    if deny:
        out.update(permissionDecision="deny", permissionDecisionReason=deny)
    elif context:
        out["additionalContext"] = context
    return {"hookSpecificOutput": out}


def decide(payload: dict[str, Any], auto_claim: bool = False) -> dict[str, Any] | None:
    """The hook's answer for one payload, or None to stay silent."""
    event = payload.get("hook_event_name") or "PreToolUse"
    if payload.get("tool_name") not in EDIT_TOOLS:
        return None
    path = target_file(payload)
    if path is None:
        return None
    real = os.path.realpath(path)
    repo = identify(_existing_dir(real), root_timeout=0.5)  # on every edit: little
    root, repo_id = repo.root, repo.repo_id
    try:
        rel = relpath_in_repo(repo, real)
    except LockdError:  # outside this checkout: nothing of ours to guard
        return None
    who = committer(payload, person_fallback=False)  # an agent's edit, never the person's
    client = Client(timeout=2.0, credential=(who or {}).get("credential"))
    viewer = None if client.credential else (who or {}).get("peer_id")
    result = client.call(Api.check(repo_id, [rel], viewer, repo.keys))["paths"][0]
    others = [c for c in result["claims"] if not c["mine"]]
    if others:
        from lockd.core import render  # a claimed file only

        lines = [render.for_agent(rel, c) for c in others]
        advice = (
            "Do not edit it now: ask the holder with send_message, or call announce_intent "
            "with notify_when_free=true to be told when it is free."
        )
        exclusive = any(c["mode"] == "exclusive" for c in others)
        text = "\n".join(lines) + "\n" + advice
        if event == "PreToolUse" and exclusive and hook_mode(root, repo.hook_mode or "") == "block":
            return _answer(event, deny=text)
        return _answer(event, context=text)
    if auto_claim and not result["claims"] and client.credential:
        from lockd.core import patterns  # the auto-claim path only

        got = client.call(
            Api.announce(
                repo_id,
                [patterns.escape("/" + rel)],
                f"auto-claimed: edited with {payload.get('tool_name')}",
            )
        )
        if got.get("granted"):
            ids = ", ".join(i["intent_id"] for i in got["intents"])
            return _answer(
                event,
                context=f"lockd: claimed {rel} for you ({ids}); "
                "release_intent when you are done with it.",
            )
    return None


def cmd_guard(args: argparse.Namespace) -> int:
    return run_hook(auto_claim=args.auto_claim)


def run_hook(auto_claim: bool = False) -> int:
    """Answer one hook payload from stdin; never in the agent's way."""
    raw = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except ValueError:
        payload = None
    if not isinstance(payload, dict):  # `[]`, `"x"`, `3` parse too, and would crash
        print("lockd guard: stdin is not the hook's JSON; nothing checked", file=sys.stderr)
        return 0
    try:
        answer = decide(payload, auto_claim=auto_claim)
    except LockdError as exc:
        if exc.kind == "unavailable":
            print(
                f"lockd guard: broker not reachable; edit not checked ({exc.message})",
                file=sys.stderr,
            )
        else:
            print(f"lockd guard: {exc.message}", file=sys.stderr)
        return 0
    if answer:
        print(json.dumps(answer))
    return 0
