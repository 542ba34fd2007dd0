"""Cursor's hooks (`lockd agent-hook cursor`): the Cursor adapter of
`decisions`, written to Cursor's documented JSON (no Cursor CLI runs here).
`preToolUse` on an edit tool answers `{"permission": "deny"}` when the guard
denies (block mode), `"ask"` when another peer claims the file (the user
decides), `"allow"` otherwise, with `user_message` / `agent_message` saying
why; `afterFileEdit` (`file_path`) claims what nobody claims, for the session."""

from __future__ import annotations

from lockd.agents import decisions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EDIT_TOOLS = {"Write", "Edit", "MultiEdit", "StrReplace", "Delete", "edit_file", "write"}


def _path(payload: dict[str, Any], value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    roots = payload.get("workspace_roots")
    root = roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else None
    return decisions.absolute(value, payload.get("cwd") or root)


def answer(payload: dict[str, Any], auto_claim: bool = False) -> dict[str, Any] | None:
    event = payload.get("hook_event_name") or "preToolUse"
    if event == "afterFileEdit":
        path = _path(payload, payload.get("file_path"))
        if path:
            decisions.check_edit([path], payload, False, "Cursor", auto_claim)
        return None  # Cursor reads no answer here
    if event != "preToolUse":
        return None
    tool_input = payload.get("tool_input")
    path = None
    if payload.get("tool_name") in EDIT_TOOLS and isinstance(tool_input, dict):
        path = _path(payload, tool_input.get("file_path") or tool_input.get("path"))
    verdict = decisions.check_edit([path], payload, True, "Cursor") if path else None
    if verdict is None:
        return {"permission": "allow"}
    if verdict.deny:
        return {"permission": "deny", "user_message": verdict.deny, "agent_message": verdict.deny}
    return {"permission": "ask", "user_message": verdict.context, "agent_message": verdict.context}
