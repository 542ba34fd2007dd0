"""Gemini CLI's hooks (`lockd agent-hook gemini`): the Gemini adapter of
`decisions`. `BeforeTool` on `write_file` / `replace` (`tool_input.file_path`)
answers `{"decision": "deny", "reason"}` to block (and on `run_shell_command`
checks a `git commit`, which its shell runs without git hooks); it has no way to tell the
model anything short of that, so warnings (and claims made for the session,
and unread messages) come with `AfterTool`, and messages with `BeforeAgent`,
as `hookSpecificOutput.additionalContext`."""

from __future__ import annotations

from lockd.agents import decisions
from lockd.agents.guard import target_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EDIT_TOOLS = {"write_file", "replace", "edit"}
SHELL_TOOL = "run_shell_command"


def _shell(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Gemini CLI runs its shell with git hooks off (`core.hooksPath=` in the
    command's git config), so a `git commit` is checked here, before it runs."""
    tool_input = payload.get("tool_input")
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    if not isinstance(command, str):
        return None
    folder = tool_input.get("dir_path") or tool_input.get("directory")
    cwd = decisions.absolute(folder, payload.get("cwd")) if isinstance(folder, str) else None
    verdict = decisions.check_commit(command, cwd or payload.get("cwd") or ".", payload)
    return {"decision": "deny", "reason": verdict.deny} if verdict and verdict.deny else None


def _context(event: str, text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}


def answer(payload: dict[str, Any], auto_claim: bool = False) -> dict[str, Any] | None:
    event = payload.get("hook_event_name") or "BeforeTool"
    if event == "BeforeAgent":
        return _context(event, decisions.unread(payload))
    if event not in ("BeforeTool", "AfterTool"):
        return None
    if event == "BeforeTool" and payload.get("tool_name") == SHELL_TOOL:
        return _shell(payload)
    path = target_file(payload) if payload.get("tool_name") in EDIT_TOOLS else None
    tool = str(payload.get("tool_name"))
    before = event == "BeforeTool"
    verdict = decisions.check_edit([path], payload, before, tool, auto_claim) if path else None
    if before:
        if verdict is not None and verdict.deny:
            return {"decision": "deny", "reason": verdict.deny}
        return None
    return _context(event, decisions.joined(verdict and verdict.context, decisions.unread(payload)))
