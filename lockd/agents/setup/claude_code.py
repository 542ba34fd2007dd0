"""Claude Code: where it keeps MCP servers and hooks, and lockd's entries.

Checked against Claude Code 2.1.332:
- `claude mcp add --scope user` writes `mcpServers.NAME = {"type": "stdio",
  "command", "args", "env"}` into `~/.claude.json` (`$CLAUDE_CONFIG_DIR/.claude.json`
  when that is set); `--scope project` into `.mcp.json` in the directory it
  runs in (not the repository's root), where the server waits for the user's
  approval at the next interactive start ("Pending approval" in `claude mcp list`).
- Hooks live in `~/.claude/settings.json` (`$CLAUDE_CONFIG_DIR/settings.json`)
  or the project's `.claude/settings.json`, and run through a shell: the
  command is shell-quoted.
- A server from settings is named as written (`lockd`), so its channel is
  `--dangerously-load-development-channels server:lockd`; the plugin's server
  is `plugin:lockd:lockd` and its channel `plugin:lockd@MARKETPLACE`.
"""

from __future__ import annotations

import os
import shlex
from functools import partial
from pathlib import Path
from typing import Any

from lockd.agents.setup.edits import Commands, FileEdit, Plan
from lockd.agents.setup.jsonfile import load, shown
from lockd.agents.setup.merge import Change, Hook, drop_hooks, drop_server, put_hooks, put_server
from lockd.core.errors import LockdError

TITLE = "Claude Code"
SERVER = "lockd"
EDITS = "Edit|Write|MultiEdit|NotebookEdit"  # the tools that change files
START = f"claude --dangerously-load-development-channels server:{SERVER}"


def hooks(lockd: str) -> list[Hook]:
    """The README's hooks: the inbox on every prompt and after edits, the guard
    before edits and (claiming what nobody claims) after them."""
    q = shlex.quote(lockd)
    return [
        Hook("UserPromptSubmit", None, f"{q} inbox --hook"),
        Hook("PreToolUse", EDITS, f"{q} guard --hook"),
        Hook("PostToolUse", EDITS, f"{q} guard --hook --auto-claim"),
        Hook("PostToolUse", EDITS, f"{q} inbox --hook"),
    ]


def server(lockd_mcp: str) -> dict[str, Any]:
    """As `claude mcp add` writes it, without the empty `env` (so one a user
    filled, with LOCKD_NAME say, stays theirs)."""
    return {"type": "stdio", "command": lockd_mcp, "args": []}


def config_dir() -> Path:
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".claude"


def files(scope: str, cwd: Path) -> tuple[Path, Path]:
    """(the file with MCP servers, the settings file with hooks) for a scope."""
    if scope == "project":
        return cwd / ".mcp.json", cwd / ".claude" / "settings.json"
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    user_config = config_dir() / ".claude.json" if configured else Path.home() / ".claude.json"
    return user_config, config_dir() / "settings.json"


def plan(scope: str, cwd: Path, commands: Commands, uninstall: bool) -> Plan:
    mcp_file, settings_file = files(scope, cwd)
    entry, wanted = server(commands.lockd_mcp), hooks(commands.lockd)

    def put_mcp(data: dict[str, Any], file: str) -> list[Change]:
        return put_server(data, file, SERVER, entry)

    def put_settings(data: dict[str, Any], file: str) -> list[Change]:
        return put_hooks(data, file, wanted)

    edits = [
        FileEdit(mcp_file, put_mcp, partial(drop_server, name=SERVER), private=scope == "user"),
        FileEdit(settings_file, put_settings, drop_hooks),
    ]
    return Plan(TITLE, edits, START, [] if uninstall else notes(scope, cwd, commands))


def notes(scope: str, cwd: Path, commands: Commands) -> list[str]:
    out = []
    if scope == "project":
        out.append(
            f"Claude Code asks you to approve the server {SERVER!r} of {shown(cwd / '.mcp.json')} "
            "the first time it starts in this directory (`claude mcp list` says "
            "'Pending approval' until then); start claude in this directory"
        )
        if os.path.isabs(commands.lockd):
            out.append(
                f"these files name this machine's {commands.lockd}; to commit them for "
                "others, run with --use-path (bare `lockd`, `lockd-mcp` from PATH)"
            )
    for plugin in enabled_plugins(cwd):
        out.append(
            f"the lockd plugin ({plugin}) is enabled too, so its hooks would run twice: keep one "
            f"(`claude plugin uninstall {plugin}`, or `lockd setup claude-code --uninstall`)"
        )
    return out


def enabled_plugins(cwd: Path) -> list[str]:
    """lockd plugins enabled in the user's or this project's settings."""
    found: dict[str, None] = {}
    for path in (
        config_dir() / "settings.json",
        cwd / ".claude" / "settings.json",
        cwd / ".claude" / "settings.local.json",
    ):
        try:
            enabled = load(path).data.get("enabledPlugins")
        except LockdError:  # a malformed file is reported where it is edited, not here
            continue
        if isinstance(enabled, dict):
            found.update((k, None) for k, v in enabled.items() if k.startswith("lockd@") and v)
    return list(found)
