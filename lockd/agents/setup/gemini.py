"""Gemini CLI: where it keeps MCP servers and hooks, and lockd's entries.

Checked against Gemini CLI 0.61.0 (its bundle, and runs against a stand-in
model): `settings.json` in `~/.gemini` (user) or the project's `.gemini`
holds `mcpServers.NAME = {command, args}` and `hooks.<Event>` in Claude Code's
shape (`[{matcher, hooks: [{type: "command", command}]}]`, `matcher` a regex on
the tool name). `BeforeTool` may answer `{"decision": "deny", "reason"}`;
`AfterTool` and `BeforeAgent` add `hookSpecificOutput.additionalContext` to
what the model reads next (the tool's result, the prompt).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from lockd.agents.setup.edits import Commands, FileEdit, Plan
from lockd.agents.setup.merge import Change, Hook, drop_hooks, drop_server, put_hooks, put_server

TITLE = "Gemini CLI"
SERVER = "lockd"
EDITS = "write_file|replace"  # the tools that change files (file_path in tool_input)


def hooks(lockd: str) -> list[Hook]:
    q = shlex.quote(lockd)
    return [
        Hook("BeforeAgent", None, f"{q} agent-hook gemini"),
        Hook("BeforeTool", f"{EDITS}|run_shell_command", f"{q} agent-hook gemini"),
        Hook("AfterTool", EDITS, f"{q} agent-hook gemini --auto-claim"),
    ]


def files(scope: str, cwd: Path) -> Path:
    return (cwd if scope == "project" else Path.home()) / ".gemini" / "settings.json"


def plan(scope: str, cwd: Path, commands: Commands, uninstall: bool) -> Plan:
    entry = {"command": commands.lockd_mcp, "args": []}
    wanted = hooks(commands.lockd)

    def install(data: dict[str, Any], file: str) -> list[Change]:
        return put_server(data, file, SERVER, entry) + put_hooks(data, file, wanted)

    def uninstall_(data: dict[str, Any], file: str) -> list[Change]:
        return drop_server(data, file, SERVER) + drop_hooks(data, file)

    edit = FileEdit(files(scope, cwd), install, uninstall_, private=scope == "user")
    notes = []
    if scope == "project" and not uninstall:
        notes.append(
            "Gemini CLI reads a project's .gemini/settings.json only in a folder it trusts: "
            "answer yes when gemini asks (or trust it with /permissions)"
        )
    return Plan(TITLE, [edit], "", notes)
