"""Codex CLI's hooks (`lockd agent-hook codex`): the Codex adapter of
`decisions`. Codex sends Claude Code's hook payload and reads Claude Code's
answer, so only the edits differ: Codex edits with `apply_patch`, the native
tool (`tool_name: "apply_patch"`) or, for models without one, a shell command
`apply_patch <<'EOF' … EOF` (`tool_name: "Bash"`); the files are the ones the
envelope names, relative to the command's directory."""

from __future__ import annotations

from lockd.agents import decisions
from lockd.agents.guard import hook_answer, target_file
from lockd.core.patch import command_patch_files, patch_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SHELL_TOOLS = {"Bash", "shell", "exec_command", "shell_command", "local_shell"}


def edited_files(payload: dict[str, Any]) -> list[str]:
    """Absolute paths of the files this tool call changes (none: not an edit)."""
    tool, tool_input = payload.get("tool_name"), payload.get("tool_input")
    if not isinstance(tool_input, dict):
        tool_input = {"input": tool_input} if isinstance(tool_input, str) else {}
    workdir = tool_input.get("workdir") or tool_input.get("cwd") or payload.get("cwd")
    found: list[str] = []
    if tool == "apply_patch":
        for value in tool_input.values():
            if isinstance(value, str):
                found += command_patch_files(value) or patch_files(value)
    elif tool in SHELL_TOOLS:
        command = tool_input.get("command") or tool_input.get("cmd")
        if isinstance(command, list):
            command = " ".join(c for c in command if isinstance(c, str))
        if isinstance(command, str):
            found = command_patch_files(command)
    else:
        path = target_file(payload)
        return [path] if path else []
    return [decisions.absolute(p, workdir if isinstance(workdir, str) else None) for p in found]


def answer(payload: dict[str, Any], auto_claim: bool = False) -> dict[str, Any] | None:
    event = payload.get("hook_event_name") or "PreToolUse"
    if event == "UserPromptSubmit":
        return hook_answer(event, None, decisions.unread(payload))
    if event not in ("PreToolUse", "PostToolUse"):
        return None
    files = edited_files(payload)
    verdict = (
        decisions.check_edit(
            files, payload, event == "PreToolUse", str(payload.get("tool_name")), auto_claim
        )
        if files
        else None
    )
    inbox = decisions.unread(payload) if event == "PostToolUse" else None
    return hook_answer(event, verdict, inbox)
