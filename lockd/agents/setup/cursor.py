"""Cursor: where it keeps MCP servers and hooks, and lockd's entries.

From Cursor's documentation (no Cursor CLI can be installed here to check):
`mcp.json` (`~/.cursor/` or the project's `.cursor/`) holds `mcpServers.NAME
= {command, args}`; `hooks.json` beside it is `{"version": 1, "hooks":
{"preToolUse": [{"command"}], "afterFileEdit": [{"command"}]}}`, each hook a
command reading the event's JSON on stdin; `preToolUse` answers
`{"permission": "allow"|"deny"|"ask", "user_message", "agent_message"}`.
"""

from __future__ import annotations

import shlex
from functools import partial
from pathlib import Path
from typing import Any

from lockd.agents.setup.edits import Commands, FileEdit, Plan
from lockd.agents.setup.merge import (
    Change,
    Hook,
    drop_flat_hooks,
    drop_server,
    put_flat_hooks,
    put_server,
)

TITLE = "Cursor"
SERVER = "lockd"


def hooks(lockd: str) -> list[Hook]:
    q = shlex.quote(lockd)
    return [
        Hook("preToolUse", None, f"{q} agent-hook cursor"),
        Hook("afterFileEdit", None, f"{q} agent-hook cursor --auto-claim"),
    ]


def files(scope: str, cwd: Path) -> tuple[Path, Path]:
    folder = (cwd if scope == "project" else Path.home()) / ".cursor"
    return folder / "mcp.json", folder / "hooks.json"


def put_hook_file(data: dict[str, Any], file: str, wanted: list[Hook]) -> list[Change]:
    changes = put_flat_hooks(data, file, wanted)
    if changes and "version" not in data:
        data["version"] = 1
    return changes


def drop_hook_file(data: dict[str, Any], file: str) -> list[Change]:
    changes = drop_flat_hooks(data, file)
    if changes and data == {"version": 1}:  # nothing but what setup wrote
        data.clear()
    return changes


def plan(scope: str, cwd: Path, commands: Commands, uninstall: bool) -> Plan:
    mcp_file, hooks_file = files(scope, cwd)
    entry = {"command": commands.lockd_mcp, "args": []}
    edits = [
        FileEdit(
            mcp_file,
            partial(put_server, name=SERVER, entry=entry),
            partial(drop_server, name=SERVER),
        ),
        FileEdit(hooks_file, partial(put_hook_file, wanted=hooks(commands.lockd)), drop_hook_file),
    ]
    return Plan(TITLE, edits, "", [])
