"""`lockd guard --hook`: Claude Code's PreToolUse (and PostToolUse) hook on
file-editing tools, the Claude Code adapter of `decisions`. A commit-time
warning comes after the work is done; this one comes before the edit.
Answers in the hook protocol's JSON on stdout: `additionalContext` to warn,
`permissionDecision: deny` in block mode. With `--auto-claim`, a file nobody
claims is announced for the session."""

from __future__ import annotations

from lockd.agents import decisions, hookrun

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
    return decisions.absolute(path, payload.get("cwd"))


def hook_answer(
    event: str, verdict: decisions.Verdict | None, extra: str | None = None
) -> dict[str, Any] | None:
    """A verdict in Claude Code's hook JSON (Codex reads the same shape)."""
    context = decisions.joined(verdict.context if verdict else None, extra)
    out: dict[str, Any] = {"hookEventName": event}
    if verdict is not None and verdict.deny:
        out.update(permissionDecision="deny", permissionDecisionReason=verdict.deny)
    elif context:
        out["additionalContext"] = context
    else:
        return None
    return {"hookSpecificOutput": out}


def decide(payload: dict[str, Any], auto_claim: bool = False) -> dict[str, Any] | None:
    """The hook's answer for one payload, or None to stay silent."""
    event = payload.get("hook_event_name") or "PreToolUse"
    if payload.get("tool_name") not in EDIT_TOOLS:
        return None
    path = target_file(payload)
    if path is None:
        return None
    verdict = decisions.check_edit(
        [path], payload, event == "PreToolUse", str(payload.get("tool_name")), auto_claim
    )
    return hook_answer(event, verdict)


def cmd_guard(args: argparse.Namespace) -> int:
    return run_hook(auto_claim=args.auto_claim)


def run_hook(auto_claim: bool = False) -> int:
    """Answer one hook payload from stdin; never in the agent's way."""
    return hookrun.run("guard", lambda payload: decide(payload, auto_claim))
