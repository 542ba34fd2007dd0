"""Putting lockd's entries into an agent client's settings and taking them out
again, as pure functions on the parsed JSON: each edits the object in place
and returns what it changed.

lockd's own entries are recognised by their command, never by position or a
marker key: an MCP server whose program is `lockd-mcp`, a hook whose program
is `lockd` running one of its hook commands (`guard --hook`, `inbox --hook`),
wherever it lives (this venv, pipx, PATH, the README's hand-written config).
Everything else in the file is the user's and is left as it was, in its order.
Putting the same entries twice changes nothing the second time; taking them
out removes exactly those entries, and the containers they alone filled.
"""

from __future__ import annotations

import json
import ntpath
import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lockd.core.errors import LockdError, invalid

HOOK_COMMANDS = ("guard", "inbox")  # `lockd guard --hook …`, `lockd inbox --hook`
CLIENT_HOOK = "agent-hook"  # `lockd agent-hook codex [--auto-claim]`, for the other clients


@dataclass(frozen=True)
class Change:
    """One entry added, updated or removed, for the summary."""

    file: str
    action: str  # "add", "update", "remove"
    where: str  # "mcpServers.lockd", "hooks.PreToolUse [Edit|Write]"
    old: str | None = None
    new: str | None = None

    def line(self) -> str:
        sign = {"add": "+", "update": "~", "remove": "-"}[self.action]
        what = {"add": self.new, "remove": self.old}.get(self.action, f"{self.old} -> {self.new}")
        return f"  {sign} {self.where}" + (f"  {what}" if what else "")

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Hook:
    """One command hook: on `event`, for tools matching `matcher` (None: all)."""

    event: str
    matcher: str | None
    command: str


# ---- recognising lockd's own entries ---------------------------------------------
def _program(word: str) -> str:
    name = ntpath.basename(posixpath.basename(word)).lower()
    return name[:-4] if name.endswith(".exe") else name


def lockd_hook(command: Any) -> str | None:
    """`inbox --hook` for any spelling of `lockd inbox --hook`; None when the
    command is not one of lockd's hooks."""
    if not isinstance(command, str):
        return None
    try:
        spellings = [shlex.split(command)]
    except ValueError:
        spellings = []
    spellings.append(command.split())  # an unquoted Windows path: C:\Tools\lockd.exe
    for argv in spellings:
        ours = len(argv) >= 3 and _program(argv[0]) == "lockd"
        if ours and argv[1] in HOOK_COMMANDS and "--hook" in argv[2:]:
            return " ".join(argv[1:])
        if ours and argv[1] == CLIENT_HOOK:
            return " ".join(argv[1:])
    return None


def lockd_server(entry: Any) -> bool:
    """An MCP server entry that runs `lockd-mcp` (directly or through a launcher
    such as `uvx lockd-mcp`)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return False
    args = entry.get("args") if isinstance(entry.get("args"), list) else []
    words = [entry["command"], *(a for a in args[:3] if isinstance(a, str))]
    return any(_program(w) == "lockd-mcp" for w in words)


# ---- MCP servers: a named entry in an object -----------------------------------------
def _table(data: dict[str, Any], key: str, file: str, create: bool) -> dict[str, Any] | None:
    table = data.get(key)
    if table is None and create:
        data[key] = {}
        table = data[key]  # read back: a TOML document stores a table of its own
    if table is not None and not isinstance(table, dict):
        raise invalid(
            f"{file}: {key!r} is a JSON {type(table).__name__}, not an object; "
            "nothing was written: fix it and run again"
        )
    return table


def put_server(
    data: dict[str, Any], file: str, name: str, entry: dict[str, Any], key: str = "mcpServers"
) -> list[Change]:
    """`data[key][name] = entry`. An entry of ours already there keeps its other
    keys (`env` the user added, say) and gets ours; someone else's server by
    that name is a conflict."""
    servers = _table(data, key, file, create=True)
    assert servers is not None
    where = f"{key}.{name}"
    old = servers.get(name)
    if old is None:
        servers[name] = entry
        return [Change(file, "add", where, new=_describe(entry))]
    if not lockd_server(old):
        raise LockdError(
            "conflict",
            f"{file} already has an MCP server named {name!r} that does not run lockd-mcp "
            f"({_describe(old)}); nothing was written: remove or rename it, then run again",
            file=file,
        )
    if all(old.get(k) == v for k, v in entry.items()):
        return []
    servers[name] = {**old, **entry}
    return [Change(file, "update", where, old=_describe(old), new=_describe(entry))]


def drop_server(
    data: dict[str, Any], file: str, name: str, key: str = "mcpServers"
) -> list[Change]:
    servers = _table(data, key, file, create=False)
    if not servers or not lockd_server(servers.get(name)):
        return []
    old = servers.pop(name)
    if not servers:
        del data[key]
    return [Change(file, "remove", f"{key}.{name}", old=_describe(old))]


def _describe(entry: Any) -> str:
    if not isinstance(entry, dict):
        return json_text(entry)
    if isinstance(entry.get("command"), str):
        args = [a for a in entry.get("args") or [] if isinstance(a, str)]
        return shlex.join([entry["command"], *args])
    return str(entry.get("url") or json_text(entry))


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)[:120]


# ---- hooks: Claude Code's shape {"hooks": {EVENT: [{matcher, hooks: [...]}]}} ----------------
def _groups(hooks: dict[str, Any], event: str, file: str) -> list[Any]:
    groups = hooks.get(event, [])
    if not isinstance(groups, list):
        raise invalid(
            f"{file}: hooks.{event} is a JSON {type(groups).__name__}, not a list; "
            "nothing was written: fix it and run again"
        )
    return groups


def _ours(groups: list[Any]) -> list[tuple[str | None, str]]:
    """(matcher, command) of each lockd hook in these groups, in order."""
    found = []
    for group in groups:
        if isinstance(group, dict) and isinstance(group.get("hooks"), list):
            for hook in group["hooks"]:
                if isinstance(hook, dict) and lockd_hook(hook.get("command")):
                    found.append((group.get("matcher") or None, hook["command"]))
    return found


def _strip(groups: list[Any]) -> list[Any]:
    """The groups without lockd's hooks; a group only they filled goes too."""
    kept = []
    for group in groups:
        if not (isinstance(group, dict) and isinstance(group.get("hooks"), list)):
            kept.append(group)
            continue
        rest = [
            h for h in group["hooks"] if not (isinstance(h, dict) and lockd_hook(h.get("command")))
        ]
        if len(rest) == len(group["hooks"]):
            kept.append(group)
        elif rest:
            kept.append({**group, "hooks": rest})
    return kept


def _where(event: str, matcher: str | None) -> str:
    return f"hooks.{event}" + (f" [{matcher}]" if matcher else "")


def put_hooks(data: dict[str, Any], file: str, wanted: list[Hook]) -> list[Change]:
    """Exactly `wanted` as lockd's hooks, each event's ours in one group per
    matcher after the user's own. An event whose lockd hooks already are
    `wanted` is not touched; otherwise its old lockd hooks make way."""
    hooks = _table(data, "hooks", file, create=True)
    assert hooks is not None
    changes: list[Change] = []
    for event in dict.fromkeys(h.event for h in wanted):
        want = [(h.matcher, h.command) for h in wanted if h.event == event]
        groups = _groups(hooks, event, file)
        have = _ours(groups)
        if sorted(have, key=repr) == sorted(want, key=repr):
            continue
        new_groups = _strip(groups)
        for matcher in dict.fromkeys(m for m, _ in want):
            group: dict[str, Any] = {"matcher": matcher} if matcher else {}
            group["hooks"] = [{"type": "command", "command": c} for m, c in want if m == matcher]
            new_groups.append(group)
        hooks[event] = new_groups
        changes += _hook_changes(file, event, have, want)
    return changes


def drop_hooks(data: dict[str, Any], file: str) -> list[Change]:
    return _drop(data, file, _ours, _strip)


def _drop(
    data: dict[str, Any],
    file: str,
    ours: Callable[[list[Any]], list[tuple[str | None, str]]],
    strip: Callable[[list[Any]], list[Any]],
) -> list[Change]:
    """Take lockd's hooks out of every event, in either shape (`ours` finds
    them, `strip` leaves the rest); an event, or "hooks", left empty goes."""
    hooks = _table(data, "hooks", file, create=False)
    if not hooks:
        return []
    changes: list[Change] = []
    for event in list(hooks):
        groups = _groups(hooks, event, file)
        have = ours(groups)
        if not have:
            continue
        rest = strip(groups)
        if rest:
            hooks[event] = rest
        else:
            del hooks[event]
        changes += _hook_changes(file, event, have, [])
    if not hooks:
        del data["hooks"]
    return changes


def _hook_changes(
    file: str,
    event: str,
    have: list[tuple[str | None, str]],
    want: list[tuple[str | None, str]],
) -> list[Change]:
    """Per hook, by what it does (`inbox --hook`): added, moved to another
    path or matcher, or removed."""

    def keyed(pairs: list[tuple[str | None, str]]) -> dict[str, tuple[str | None, str]]:
        return {f"{m}\0{lockd_hook(c)}": (m, c) for m, c in pairs}

    old, new = keyed(have), keyed(want)
    changes = []
    for key, (matcher, command) in new.items():
        if key not in old:
            changes.append(Change(file, "add", _where(event, matcher), new=command))
        elif old[key][1] != command:
            changes.append(
                Change(file, "update", _where(event, matcher), old=old[key][1], new=command)
            )
    for key, (matcher, command) in old.items():
        if key not in new:
            changes.append(Change(file, "remove", _where(event, matcher), old=command))
    return changes


# ---- hooks in a flat list per event: Cursor's {"hooks": {EVENT: [{command}]}} -----------
def _flat_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and lockd_hook(entry.get("command")) is not None


def _flat_have(entries: list[Any]) -> list[tuple[str | None, str]]:
    return [(None, e["command"]) for e in entries if _flat_ours(e)]


def _flat_strip(entries: list[Any]) -> list[Any]:
    return [e for e in entries if not _flat_ours(e)]


def put_flat_hooks(data: dict[str, Any], file: str, wanted: list[Hook]) -> list[Change]:
    """Exactly `wanted` as lockd's hooks, after the user's own in each event's
    list (`matcher` unused: the hook reads the tool from its payload)."""
    hooks = _table(data, "hooks", file, create=True)
    assert hooks is not None
    changes: list[Change] = []
    for event in dict.fromkeys(h.event for h in wanted):
        want = [(None, h.command) for h in wanted if h.event == event]
        entries = _groups(hooks, event, file)
        have = _flat_have(entries)
        if have == want:
            continue
        hooks[event] = _flat_strip(entries) + [{"command": c} for _, c in want]
        changes += _hook_changes(file, event, have, want)
    return changes


def drop_flat_hooks(data: dict[str, Any], file: str) -> list[Change]:
    return _drop(data, file, _flat_have, _flat_strip)
