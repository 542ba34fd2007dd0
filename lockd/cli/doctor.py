"""`lockd doctor`: is lockd wired up on this machine, and if not, what fixes it.

For every agent client found (its program on PATH, or its settings folder),
whether lockd is set up in it (MCP server, hooks, and for Codex the hooks'
trust) the way `lockd setup <client>` would leave it, user or project
settings, and whether the `lockd-mcp` those settings name runs; then whether
the broker answers and this checkout has lockd's git hooks. "Set up" is asked
of setup itself: its plan, applied as a dry run to what is there, changes
nothing. Each problem comes with the command that fixes it.
"""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockd.agents.setup.edits import CLIENTS, Commands, apply, executables
from lockd.agents.setup.merge import lockd_server
from lockd.core.errors import LockdError

# client -> (programs that mean it is installed, its settings folder)
FOUND_BY = {
    "claude-code": (("claude",), lambda: Path.home() / ".claude"),
    "codex": (("codex",), lambda: _codex_home()),
    "gemini": (("gemini",), lambda: Path.home() / ".gemini"),
    "cursor": (("cursor", "cursor-agent"), lambda: Path.home() / ".cursor"),
}


def _codex_home() -> Path:
    from lockd.agents.setup.codex import codex_home

    return codex_home()


@dataclass
class Check:
    subject: str  # "codex", "broker", "git hooks"
    what: str
    ok: bool
    detail: str = ""
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}

    def line(self) -> str:
        mark = "ok " if self.ok else "!! "
        text = f"{mark}{self.subject}: {self.what}" + (f" ({self.detail})" if self.detail else "")
        return text + (f"\n     fix: {self.fix}" if self.fix and not self.ok else "")


def found(client: str) -> bool:
    programs, folder = FOUND_BY[client]
    return any(shutil.which(p) for p in programs) or folder().is_dir()


def _missing(client: str, scope: str, cwd: Path, commands: Commands) -> list[str]:
    """What `lockd setup` would still change in these settings ([]: set up)."""
    adapter = importlib.import_module(CLIENTS[client])
    plan = adapter.plan(scope, cwd, commands, False)
    changes, _, _ = apply(plan.edits, uninstall=False, dry_run=True)
    return [c.where for c in changes]


def _servers(client: str, scope: str, cwd: Path, commands: Commands) -> list[dict[str, Any]]:
    """lockd's MCP server entries in the files setup writes for this scope."""
    adapter = importlib.import_module(CLIENTS[client])
    out = []
    for edit in adapter.plan(scope, cwd, commands, False).edits:
        data = edit.load(edit.path).data
        for key in ("mcpServers", "mcp_servers"):
            table = data.get(key)
            if isinstance(table, dict):
                out += [e for e in table.values() if lockd_server(e)]
    return out


def _runs(command: str) -> bool:
    if os.path.isabs(command):
        return os.path.isfile(command) and os.access(command, os.X_OK)
    return shutil.which(command) is not None


def client_checks(client: str, cwd: Path) -> list[Check]:
    title = client
    try:
        variants = [executables(False), executables(True)]
    except LockdError:
        variants = [executables(True)]
    best: tuple[str, list[str]] | None = None
    for scope in ("user", "project"):
        for commands in variants:
            missing = _missing(client, scope, cwd, commands)
            if best is None or len(missing) < len(best[1]):
                best = (scope, missing)
    assert best is not None
    scope, missing = best
    fix = f"lockd setup {client}" + (" --project" if scope == "project" else "")
    checks = [
        Check(
            title,
            f"lockd set up ({scope} settings)",
            not missing,
            "missing: " + ", ".join(missing[:6]) if missing else "",
            fix,
        )  # fmt: skip
    ]
    servers = [s for sc in ("user", "project") for s in _servers(client, sc, cwd, variants[-1])]
    bad = [s["command"] for s in servers if not _runs(str(s.get("command")))]
    if servers:
        checks.append(
            Check(
                title,
                "lockd-mcp resolves from its config",
                not bad,
                f"cannot run {', '.join(bad)}" if bad else servers[0]["command"],
                fix,
            )  # fmt: skip
        )
    if client == "claude-code":
        checks.append(_claude_push())
    return checks


def _claude_push() -> Check:
    """Pushed messages (the channel) need a first-party provider and the start
    flag; without them messages still arrive through the inbox hook."""
    base = os.environ.get("ANTHROPIC_BASE_URL", "")
    third_party = bool(base) and "anthropic.com" not in base
    return Check(
        "claude-code",
        "push (channel) can work",
        not third_party,
        f"ANTHROPIC_BASE_URL={base}: channels need Anthropic's API; the inbox hook delivers"
        if third_party
        else "start it with claude --dangerously-load-development-channels server:lockd",
        "unset ANTHROPIC_BASE_URL, or rely on the inbox hook",
    )


def broker_check() -> Check:
    from lockd.client.api import Api
    from lockd.client.sync import Client
    from lockd.local import config

    try:
        data = Client(timeout=3).call(Api.health())
    except LockdError as exc:
        return Check("broker", "answers", False, f"{config.broker_url()}: {exc.message}",
                     "lockd serve (or check LOCKD_URL / LOCKD_PORT)")  # fmt: skip
    return Check("broker", "answers", True, f"{config.broker_url()} {data.get('status', 'ok')}")


def git_hooks_check(cwd: Path) -> Check | None:
    from lockd.githooks.install import status
    from lockd.local.repo import identify

    try:
        identify(str(cwd))
        data = status(str(cwd))
    except LockdError:
        return None  # not in a checkout: nothing to say
    pre = data["hooks"]["pre-commit"]
    ok = pre["installed"] and not pre["outdated"]
    detail = f"mode {data['mode']}" if ok else ("outdated" if pre["installed"] else "not installed")
    return Check("git hooks", f"pre-commit in {cwd}", ok, detail, "lockd hooks install")


def run(cwd: str | None = None) -> tuple[bool, list[Check]]:
    """Every check, and whether all passed."""
    here = Path(cwd or os.getcwd()).absolute()
    checks: list[Check] = []
    clients = [c for c in CLIENTS if found(c)]
    for client in clients:
        try:
            checks += client_checks(client, here)
        except LockdError as exc:  # a malformed settings file: named by the error
            checks.append(Check(client, "settings readable", False, exc.message,
                                "fix that file, then lockd setup " + client))  # fmt: skip
    if not clients:
        checks.append(Check("clients", "an agent client found", False,
                            "none of claude, codex, gemini, cursor on PATH or in HOME",
                            "install one, then lockd setup <client>"))  # fmt: skip
    checks.append(broker_check())
    hooks = git_hooks_check(here)
    if hooks is not None:
        checks.append(hooks)
    return all(c.ok for c in checks), checks
