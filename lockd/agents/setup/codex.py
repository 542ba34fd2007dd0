"""Codex CLI: where it keeps MCP servers, hooks and hook trust, and lockd's
entries there.

Checked against Codex 0.171.0 (its binary, and codex-rs/hooks/src/engine/
discovery.rs and codex-rs/config/src/fingerprint.rs of openai/codex):
- MCP servers are `[mcp_servers.NAME]` in `$CODEX_HOME/config.toml`
  (`~/.codex`), or the project's `.codex/config.toml`. A server gets only a
  few of Codex's variables unless `env_vars` names more: lockd's LOCKD_* are
  named, so a broker configured by environment is found.
- Hooks may sit in `hooks.json` beside that config.toml, in Claude Code's shape
  (`{"hooks": {"PreToolUse": [{"matcher", "hooks": [{"type": "command",
  "command"}]}]}}`); commands run through a shell.
- A hook runs only when trusted: `[hooks.state."<hooks.json>:<event>:<group>:<n>"]
  trusted_hash = "sha256:…"` in the user's config.toml, the hash being SHA-256
  of the compact, key-sorted JSON of `{event_name, matcher, hooks: [handler]}`
  with the handler normalized (`timeout` 600 when unset, `async` false). Codex
  skips an untrusted hook silently, so setup writes that trust for lockd's own
  hooks (and takes it out again on --uninstall).
- A project's `.codex` is read only when Codex trusts the project
  (`[projects."<dir>"] trust_level = "trusted"`, which Codex asks for).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from functools import partial
from pathlib import Path
from typing import Any

from lockd.agents.setup import tomlfile
from lockd.agents.setup.edits import Commands, FileEdit, Plan
from lockd.agents.setup.jsonfile import shown
from lockd.agents.setup.merge import Change, Hook, drop_hooks, drop_server, lockd_hook, put_hooks
from lockd.agents.setup.merge import put_server as put_named
from lockd.core.errors import invalid

TITLE = "Codex"
SERVER = "lockd"
# Codex's names for the tools that edit files: its shell (an `apply_patch`
# heredoc) and the native apply_patch tool; Edit/Write should it grow them.
EDITS = "^(Bash|apply_patch|Edit|Write)$"
ENV_VARS = ["LOCKD_HOME", "LOCKD_PORT", "LOCKD_URL", "LOCKD_TOKEN", "LOCKD_CA", "LOCKD_NAME"]
DEFAULT_TIMEOUT = 600  # seconds: Codex's value for a hook that sets none


def hooks(lockd: str) -> list[Hook]:
    """The guard before edits, claiming what nobody claims as it lets them
    through (Codex runs no PostToolUse after an apply_patch), the inbox after
    tools and on every prompt: one command, the adapter tells events apart."""
    q = shlex.quote(lockd)
    return [
        Hook("UserPromptSubmit", None, f"{q} agent-hook codex"),
        Hook("PreToolUse", EDITS, f"{q} agent-hook codex --auto-claim"),
        Hook("PostToolUse", EDITS, f"{q} agent-hook codex"),
    ]


def server(lockd_mcp: str) -> dict[str, Any]:
    return {"command": lockd_mcp, "args": [], "env_vars": ENV_VARS}


def codex_home() -> Path:
    configured = os.environ.get("CODEX_HOME")
    return Path(configured).expanduser().absolute() if configured else Path.home() / ".codex"


# ---- trust -------------------------------------------------------------------------
def _snake(event: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event).lower()


def hook_hash(event: str, matcher: str | None, handler: dict[str, Any]) -> str:
    """Codex's `command_hook_hash`: what `trusted_hash` must be for this hook."""
    normalized: dict[str, Any] = {
        "type": "command",
        "command": handler.get("command"),
        "timeout": max(int(handler.get("timeout") or DEFAULT_TIMEOUT), 1),
        "async": bool(handler.get("async", False)),
    }
    if handler.get("statusMessage") is not None:
        normalized["statusMessage"] = handler["statusMessage"]
    identity: dict[str, Any] = {"event_name": _snake(event), "hooks": [normalized]}
    if matcher is not None and event not in ("UserPromptSubmit", "Stop"):  # matchers ignored
        identity["matcher"] = matcher
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def trusted(hooks_data: dict[str, Any], hooks_file: Path) -> dict[str, str]:
    """key -> trusted_hash for every lockd hook in `hooks_data` (hooks.json)."""
    out: dict[str, str] = {}
    events = hooks_data.get("hooks")
    for event, groups in (events if isinstance(events, dict) else {}).items():
        for g, group in enumerate(groups if isinstance(groups, list) else []):
            if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
                continue
            for n, handler in enumerate(group["hooks"]):
                if isinstance(handler, dict) and lockd_hook(handler.get("command")):
                    key = f"{hooks_file}:{_snake(event)}:{g}:{n}"
                    out[key] = hook_hash(event, group.get("matcher"), handler)
    return out


def _state(data: Any, file: str, create: bool) -> Any:
    table = data.get("hooks")
    if table is None and not create:
        return None
    if table is None:
        data["hooks"] = {}
        table = data["hooks"]
    if not isinstance(table, dict):
        raise invalid(f"{file}: 'hooks' is not a table; nothing was written: fix it and run again")
    if "state" not in table:
        if not create:
            return None
        table["state"] = {}
    return table["state"]


def put_trust(
    data: Any, file: str, hooks_file: Path, seen: dict[str, Any], ours: set[str]
) -> list[Change]:
    """Trust exactly lockd's hooks as they now stand in hooks.json (`seen`
    holds that file's data, read just before): stale trust of ours (a hash of
    one of lockd's hooks at a position that moved) goes."""
    want = trusted(seen.get("data") or {}, hooks_file)
    state = _state(data, file, create=bool(want))
    if state is None:
        return []
    changes = []
    prefix = f"{hooks_file}:"
    for key in [k for k in state if k.startswith(prefix) and k not in want]:
        entry = state[key]
        if isinstance(entry, dict) and entry.get("trusted_hash") in ours:
            del state[key]
            changes.append(Change(file, "remove", f"hooks.state.{key}"))
    for key, digest in want.items():
        entry = state.get(key)
        if isinstance(entry, dict) and entry.get("trusted_hash") == digest:
            continue
        if isinstance(entry, dict):
            entry["trusted_hash"] = digest
        else:
            state[key] = {"trusted_hash": digest}
        changes.append(Change(file, "add", f"hooks.state.{key}", new=digest))
    _prune(data)
    return changes


def _prune(data: Any) -> None:
    """Tables lockd's entries alone filled go with them."""
    hooks_table = data.get("hooks")
    if isinstance(hooks_table, dict):
        if "state" in hooks_table and not hooks_table["state"]:
            del hooks_table["state"]
        if not hooks_table:
            del data["hooks"]


def files(scope: str, cwd: Path) -> tuple[Path, Path, Path]:
    """(config.toml with the MCP server, hooks.json, config.toml with the trust)."""
    user = codex_home() / "config.toml"
    folder = cwd / ".codex" if scope == "project" else codex_home()
    return folder / "config.toml", folder / "hooks.json", user


def plan(scope: str, cwd: Path, commands: Commands, uninstall: bool) -> Plan:
    mcp_file, hooks_file, trust_file = files(scope, cwd)
    entry, wanted = server(commands.lockd_mcp), hooks(commands.lockd)
    ours = {hook_hash(h.event, h.matcher, {"command": h.command}) for h in wanted}
    seen: dict[str, Any] = {}  # hooks.json as edited, for the trust edit after it

    def put_hook_file(data: dict[str, Any], file: str) -> list[Change]:
        changes = put_hooks(data, file, wanted)
        seen["data"] = data
        return changes

    def drop_hook_file(data: dict[str, Any], file: str) -> list[Change]:
        changes = drop_hooks(data, file)
        seen["data"] = data
        return changes

    def put_mcp(data: Any, file: str) -> list[Change]:
        return put_named(data, file, SERVER, entry, key="mcp_servers")

    trust = partial(put_trust, hooks_file=hooks_file, seen=seen, ours=ours)

    def mcp_and_trust(install: bool) -> Any:
        def edit(data: Any, file: str) -> list[Change]:
            if install:
                changes = put_mcp(data, file)
            else:
                changes = drop_server(data, file, SERVER, "mcp_servers")
            return changes + trust(data, file)

        return edit

    edits = [FileEdit(hooks_file, put_hook_file, drop_hook_file)]
    if mcp_file == trust_file:
        edits.append(
            FileEdit(mcp_file, mcp_and_trust(True), mcp_and_trust(False), True, tomlfile.load)
        )
    else:
        drop = partial(drop_server, name=SERVER, key="mcp_servers")
        edits.append(FileEdit(mcp_file, put_mcp, drop, False, tomlfile.load))
        edits.append(FileEdit(trust_file, trust, trust, True, tomlfile.load))
    return Plan(TITLE, edits, "", [] if uninstall else notes(scope, cwd))


def notes(scope: str, cwd: Path) -> list[str]:
    out = [
        "lockd's hooks are trusted in "
        f"{shown(codex_home() / 'config.toml')} [hooks.state]; Codex's /hooks lists them"
    ]
    if scope == "project":
        out.append(
            f"Codex reads {shown(cwd / '.codex')} only in a project it trusts: answer yes when "
            f'codex asks, or add [projects."{cwd}"] trust_level = "trusted" to '
            f"{shown(codex_home() / 'config.toml')}"
        )
    return out
