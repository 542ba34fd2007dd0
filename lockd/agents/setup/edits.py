"""`lockd setup CLIENT`: connect an agent client to lockd in one command.

One module per client (`claude_code.py`, `codex.py`, `gemini.py`, `cursor.py`)
says which files hold its MCP servers and hooks and what lockd's entries in
them are; this module and `merge`/`jsonfile` do the rest the same way for every
client: read every file first (a malformed one stops everything before
anything is written), put or take out lockd's entries, show what changed,
write each changed file atomically, and do nothing at all the second time.
"""

from __future__ import annotations

import copy
import importlib
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockd.agents.setup.jsonfile import JsonFile, Moved, load, replace, shown
from lockd.agents.setup.merge import Change
from lockd.core.errors import LockdError, invalid

CLIENTS = {  # name -> adapter module
    "claude-code": "lockd.agents.setup.claude_code",
    "codex": "lockd.agents.setup.codex",
    "gemini": "lockd.agents.setup.gemini",
    "cursor": "lockd.agents.setup.cursor",
}
SCOPES = ("user", "project")
ATTEMPTS = 5  # reads and writes again when the client rewrote a file meanwhile


@dataclass(frozen=True)
class Commands:
    """How the client's settings start lockd: absolute paths of this
    installation (so hooks work without PATH), or bare names."""

    lockd: str
    lockd_mcp: str


@dataclass(frozen=True)
class FileEdit:
    """One settings file and what lockd puts into it (`install`) or takes out
    of it (`uninstall`): functions that edit the parsed object in place."""

    path: Path
    install: Callable[[dict[str, Any], str], list[Change]]
    uninstall: Callable[[dict[str, Any], str], list[Change]]
    private: bool = False  # a new file is created 0600 (it is the client's own config)
    load: Callable[[Path], Any] = load  # jsonfile.load, or tomlfile.load for TOML


@dataclass
class Plan:
    """What a client adapter returns."""

    title: str  # "Claude Code"
    edits: list[FileEdit]
    start: str  # the command line that starts the client with lockd's channel ("": none)
    notes: list[str] = field(default_factory=list)


@dataclass
class Result:
    client: str
    title: str
    scope: str
    uninstall: bool
    dry_run: bool
    changes: list[Change]
    written: list[str]  # files written (with --dry-run: that would be)
    removed: list[str]  # files deleted: they held nothing but lockd's entries
    start: str
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "scope": self.scope,
            "action": "uninstall" if self.uninstall else "install",
            "dry_run": self.dry_run,
            "changed": bool(self.changes),
            "changes": [c.to_json() for c in self.changes],
            "written": self.written,
            "removed": self.removed,
            "start": None if self.uninstall else self.start,
            "notes": self.notes,
        }

    def text(self) -> str:
        lines: list[str] = []
        for file in dict.fromkeys(c.file for c in self.changes):
            lines.append(file)
            lines += [c.line() for c in self.changes if c.file == file]
        would = "would " if self.dry_run else ""
        if not self.changes:
            state = "not set up" if self.uninstall else "already set up"
            lines.append(
                f"{self.title} is {state} for lockd ({self.scope} settings): nothing to change"
            )
        else:
            if self.written:
                lines.append(f"{would}write {', '.join(self.written)}")
            if self.removed:
                lines.append(
                    f"{would}delete {', '.join(self.removed)} (it held only lockd's entries)"
                )
            if self.dry_run:
                lines.append("dry run: nothing written")
        if not self.uninstall and self.start:
            lines += ["", f"Start {self.title} with lockd's channel (messages pushed in):"]
            lines.append(f"  {self.start}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def run(
    client: str,
    scope: str = "user",
    uninstall: bool = False,
    dry_run: bool = False,
    use_path: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    commands: Commands | None = None,
) -> Result:
    """Set up (or with `uninstall`, take down) lockd in `client`'s user or
    project settings. Raises LockdError: invalid (a malformed file, exit 2),
    conflict (a foreign entry by lockd's name, exit 5), not_found (no lockd
    executable, exit 4), internal (a write failed, exit 1)."""
    if client not in CLIENTS:
        raise invalid(f"unknown client {client!r}: lockd sets up {', '.join(CLIENTS)}")
    if scope not in SCOPES:
        raise invalid(f"scope {scope!r} is not user or project")
    adapter = importlib.import_module(CLIENTS[client])
    commands = commands or executables(use_path)
    plan: Plan = adapter.plan(scope, Path(cwd or os.getcwd()).absolute(), commands, uninstall)
    changes, written, removed = apply(plan.edits, uninstall, dry_run)
    return Result(
        client,
        plan.title,
        scope,
        uninstall,
        dry_run,
        changes,
        written,
        removed,
        plan.start,
        plan.notes,
    )


def apply(
    edits: list[FileEdit], uninstall: bool, dry_run: bool
) -> tuple[list[Change], list[str], list[str]]:
    """Every file read and edited in memory first; then the changed ones
    written, each atomically. A file the client rewrote meanwhile is read
    and edited again (what was already written then changes nothing)."""
    for _ in range(ATTEMPTS):
        planned: list[tuple[FileEdit, JsonFile, dict[str, Any], list[Change]]] = []
        for edit in edits:
            file = edit.load(edit.path)
            data = copy.deepcopy(file.data)
            change = edit.uninstall if uninstall else edit.install
            planned.append((edit, file, data, change(data, file.name)))
        changes = [c for *_, cs in planned for c in cs]
        # Left empty by an uninstall: deleted (a symlink's target, someone's dotfile, stays).
        gone = {f.name for _, f, data, cs in planned if cs and uninstall and not data}
        gone -= {f.name for _, f, *_ in planned if f.path.is_symlink()}
        written = [f.name for _, f, _, cs in planned if cs and f.name not in gone]
        removed = [f.name for _, f, _, cs in planned if cs and f.name in gone]
        if dry_run:
            return changes, written, removed
        try:
            for edit, file, data, cs in planned:
                if cs:
                    text = None if file.name in gone else file.render(data)
                    replace(file, text, edit.private)
        except Moved:
            continue
        return changes, written, removed
    raise LockdError(
        "conflict",
        "the settings files kept changing while lockd wrote them (a running client "
        "rewriting them?); run again",
    )


# ---- which lockd the settings run ---------------------------------------------------
def executables(use_path: bool = False) -> Commands:
    """This installation's `lockd` and `lockd-mcp`, absolute: the script that is
    running, else the ones beside the interpreter (a venv, pipx), else PATH's."""
    if use_path:
        return Commands("lockd", "lockd-mcp")
    running = sys.argv[0] if sys.argv else ""
    first = [running] if _bare(running) == "lockd" and os.path.isfile(running) else []
    lockd = _find("lockd", first)
    return Commands(lockd, _find("lockd-mcp", [os.path.join(os.path.dirname(lockd), "lockd-mcp")]))


def _bare(path: str) -> str:
    name = os.path.basename(path).lower()
    return name[:-4] if name.endswith(".exe") else name


def _find(name: str, first: list[str]) -> str:
    beside = os.path.dirname(sys.executable)
    candidates = [
        *first,
        os.path.join(beside, name),
        os.path.join(beside, name + ".exe"),
        os.path.join(beside, "Scripts", name + ".exe"),
    ]
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
    found = shutil.which(name)
    if found:
        return os.path.abspath(found)
    raise LockdError(
        "not_found",
        f"cannot find the {name} executable beside {sys.executable} or on PATH: install "
        f"lockd with its scripts (pipx install lockd), or pass --use-path to write a bare "
        f"{name!r} that your PATH resolves later",
    )


__all__ = ["CLIENTS", "Commands", "FileEdit", "Plan", "Result", "apply", "run", "shown"]
