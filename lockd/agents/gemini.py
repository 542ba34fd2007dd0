"""Gemini CLI's hooks (`lockd agent-hook gemini`): the Gemini adapter of
`decisions`. `BeforeTool` on `write_file` / `replace` (`tool_input.file_path`)
answers `{"decision": "deny", "reason"}` to block; it has no way to tell the
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
    path = target_file(payload) if payload.get("tool_name") in EDIT_TOOLS else None
    tool = str(payload.get("tool_name"))
    before = event == "BeforeTool"
    verdict = decisions.check_edit([path], payload, before, tool, auto_claim) if path else None
    if before:
        if verdict is not None and verdict.deny:
            return {"decision": "deny", "reason": verdict.deny}
        return None
    return _context(event, decisions.joined(verdict and verdict.context, decisions.unread(payload)))
