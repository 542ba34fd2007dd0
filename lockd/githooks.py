"""The git hooks' logic: which paths a commit or push touches, who is
committing, the check against the broker, the clash lines, and installing
the hooks without destroying anyone's own.

Kept light: stdlib, gitcmd and the sync client only (no FastAPI, pydantic or
GitPython), because it runs on every commit.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Callable

from lockd import gitcmd
from lockd.client import Api, Client
from lockd.errors import LockdError, invalid
from lockd.identity import committer
from lockd.repo import identify

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse, pathlib and typing: not on the hook's own path
    import argparse
    from pathlib import Path
    from typing import Any

MARKER = "# lockd-managed-hook"
HOOK_TYPES = ("pre-commit", "pre-push")
ZERO = "0" * 40
CHUNK = 1000
MODES = ("warn", "block")


def hook_mode(cwd: str, configured: str | None = None) -> str:
    """LOCKD_HOOK_MODE, else `lockd.hookMode` (pass it when already read), else warn."""
    if configured is None and not os.environ.get("LOCKD_HOOK_MODE"):
        configured = gitcmd.config_get(cwd, "lockd.hookMode")
    mode = os.environ.get("LOCKD_HOOK_MODE") or configured or "warn"
    mode = mode.strip().lower()
    if mode not in MODES:
        print(f"lockd: hook mode {mode!r} is not warn or block; using warn", file=sys.stderr)
        return "warn"
    return mode


def _age(since: float) -> str:
    s = max(0, int(time.time() - since))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def push_paths(cwd: str, remote: str, stdin: str) -> list[str]:
    """Files changed by the commits being pushed (git's pre-push stdin lines)."""
    seen: dict[str, None] = {}
    old, new = os.environ.get("PRE_COMMIT_FROM_REF"), os.environ.get("PRE_COMMIT_TO_REF")
    if not stdin.strip() and old and new:  # the pre-commit framework passes refs by env
        stdin = f"HEAD {new} ref {old}"
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        _local_ref, local_sha, _remote_ref, remote_sha = parts
        if set(local_sha) == {"0"}:
            continue  # deleting a remote branch touches no files
        if set(remote_sha) == {"0"}:
            paths = gitcmd.paths_of_new_commits(cwd, local_sha, remote)
        else:
            try:
                paths = gitcmd.changed_paths_between(cwd, remote_sha, local_sha)
            except LockdError:  # remote tip unknown here (e.g. force push): new commits only
                paths = gitcmd.paths_of_new_commits(cwd, local_sha, remote)
        seen.update(dict.fromkeys(paths))
    return list(seen)


def _push_remote(argv: list[str]) -> str:
    """git passes the remote (name or URL) as the first argument; the pre-commit
    framework passes none and says it in PRE_COMMIT_REMOTE_NAME."""
    return (argv[0] if argv else "") or os.environ.get("PRE_COMMIT_REMOTE_NAME") or "origin"


def check(
    client: Client, repo_id: str, paths: list[str], viewer: str | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(paths), CHUNK):
        out.extend(client.call(Api.check(repo_id, paths[i : i + CHUNK], viewer))["paths"])
    return out


def report(results: list[dict[str, Any]], who: str | None) -> tuple[list[str], list[str], bool]:
    """(clash lines, reminder lines, any exclusive clash)."""
    clashes, reminders, exclusive = [], [], False
    for entry in results:
        for c in entry["claims"]:
            if c["mine"]:
                reminders.append(
                    f"  {entry['path']}: your claim {c['pattern']} ({c['intent_id']})"
                    " — release when done: lockd release " + c["intent_id"]
                )
                continue
            exclusive = exclusive or c["mode"] == "exclusive"
            summary = f" ({c['summary']})" if c.get("summary") else ""
            clashes.append(
                f"  {entry['path']}: claimed by {c['peer_name']}{summary} with "
                f"{c['pattern']} [{c['mode']}, {_age(c['since'])} ago]: {c['reason']}"
            )
    return clashes, reminders, exclusive


def run(hook: str, argv: list[str], stdin: str = "", cwd: str | None = None) -> int:
    """The hook itself. Never blocks on a broker it cannot reach."""
    cwd = cwd or os.getcwd()
    # The staged diff runs while identify() asks git for the roots and config.
    staged = gitcmd.start_staged_paths(cwd) if hook == "pre-commit" else None
    try:
        repo = identify(cwd)
        if not repo.is_git:
            raise LockdError("invalid", f"{cwd} is not inside a git work tree")
        repo_id = repo.repo_id
        paths = (
            gitcmd.staged_paths_of(staged)
            if staged is not None
            else push_paths(cwd, _push_remote(argv), stdin)
        )
    except LockdError as exc:
        print(f"lockd: {hook} skipped: {exc.message}", file=sys.stderr)
        return 0
    if not paths:
        return 0
    who = committer()
    viewer = who["peer_id"] if who else None
    client = Client(timeout=2.0)
    try:
        results = check(client, repo_id, paths, viewer)
    except LockdError as exc:
        if exc.kind == "unavailable":
            print(
                f"lockd: broker not reachable at {client.url}; {hook} not checked", file=sys.stderr
            )
        else:
            print(f"lockd: {hook} not checked: {exc.message}", file=sys.stderr)
        return 0
    clashes, reminders, exclusive = report(results, viewer)
    mode = hook_mode(cwd, repo.hook_mode or "")
    if clashes:
        what = "this commit touches" if hook == "pre-commit" else "this push carries"
        print(f"lockd: {what} files other peers have claimed:", file=sys.stderr)
        print("\n".join(clashes), file=sys.stderr)
        _tell_holders(client, repo_id, results, hook, who)
    if reminders:
        print("lockd: reminder, you claim:", file=sys.stderr)
        print("\n".join(reminders), file=sys.stderr)
    if clashes and exclusive and mode == "block":
        print(
            f"lockd: {hook} refused (lockd.hookMode=block). Ask the holders (lockd send), "
            "or bypass once with --no-verify.",
            file=sys.stderr,
        )
        return 1
    return 0


def _tell_holders(
    client: Client,
    repo_id: str,
    results: list[dict[str, Any]],
    hook: str,
    who: dict[str, Any] | None,
) -> None:
    ids = sorted({c["intent_id"] for e in results for c in e["claims"] if not c["mine"]})
    paths = [e["path"] for e in results if any(not c["mine"] for c in e["claims"])]
    # Telling holders is a courtesy; the hook's verdict stands either way.
    with contextlib.suppress(LockdError):
        client.call(Api.commit_notice(repo_id, ids, paths, hook, who["peer_id"] if who else None))


# ---- install ------------------------------------------------------------------
def hook_script(name: str, python: str) -> str:
    """The hook lockd installs, from its versioned template (lockd/resources/
    git-hook.sh), every interpolated value shell-quoted."""
    import shlex

    text = _template()
    for key, value in (("@HOOK@", name), ("@PYTHON@", python)):
        text = text.replace(key, shlex.quote(value))
    return text.replace("@MARKER@", f"{MARKER} template={template_id()}")


def _template() -> str:
    from importlib.resources import files

    return (files("lockd") / "resources" / "git-hook.sh").read_text()


def template_id() -> str:
    """The current template's fingerprint, written into every installed hook:
    a hook with another one (or none: the first release's) is ours but outdated."""
    import hashlib  # not on the hook's own path

    return hashlib.sha256(_template().encode()).hexdigest()[:16]


def _installed_template(text: str) -> str | None:
    """The template fingerprint of a lockd hook's text ("unversioned" for the
    first release's, which had none), None if the hook is not lockd's."""
    for line in text.splitlines()[:3]:
        if line == MARKER:
            return "unversioned"
        if line.startswith(MARKER + " template="):
            return line.split("=", 1)[1].strip()
    return None


def _hooks_path(cwd: str) -> Path:
    from pathlib import Path  # installing is not the hook's hot path

    return Path(gitcmd.hooks_dir(cwd))


def _is_ours(path: Path) -> bool:
    return _template_of(path) is not None


def _template_of(path: Path) -> str | None:
    try:
        return _installed_template(path.read_text(errors="replace"))
    except OSError:
        return None


def install(cwd: str, mode: str | None = None, pre_push: bool = False) -> list[str]:
    hooks = _hooks_path(cwd)
    hooks.mkdir(parents=True, exist_ok=True)
    done = []
    for name in ("pre-commit", "pre-push") if pre_push else ("pre-commit",):
        target, legacy = hooks / name, hooks / f"{name}.legacy"
        if target.exists() and not _is_ours(target):
            if legacy.exists():
                raise LockdError(
                    "conflict",
                    f"both {target} and {legacy} exist and neither is "
                    "lockd's: move one away, then install again",
                )
            target.rename(legacy)
            done.append(f"kept your {name} as {legacy.name}; it still runs first")
        target.write_text(hook_script(name, sys.executable))
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        done.append(f"installed {target}")
    if mode:
        if mode not in MODES:
            raise invalid(f"mode {mode!r} is not one of: warn, block")
        gitcmd.run(["config", "lockd.hookMode", mode], cwd=cwd)
        done.append(f"lockd.hookMode = {mode}")
    return done


def uninstall(cwd: str) -> list[str]:
    hooks = _hooks_path(cwd)
    done = []
    for name in HOOK_TYPES:
        target, legacy = hooks / name, hooks / f"{name}.legacy"
        if target.exists() and _is_ours(target):
            target.unlink()
            done.append(f"removed {target}")
            if legacy.exists():
                legacy.rename(target)
                done.append(f"restored your {name}")
    return done or ["no lockd hooks installed here"]


def status(cwd: str) -> dict[str, Any]:
    hooks = _hooks_path(cwd)
    return {
        "hooks_dir": str(hooks),
        "mode": hook_mode(cwd),
        "hooks": {
            name: {
                "installed": _is_ours(hooks / name),
                "outdated": _template_of(hooks / name) not in (None, template_id()),
                "legacy": (hooks / f"{name}.legacy").exists(),
            }
            for name in HOOK_TYPES
        },
    }


# ---- CLI wiring -----------------------------------------------------------------
def add_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("hooks", _cmd_hooks, "install, remove or show lockd's git hooks in this checkout")
    p.add_argument("action", choices=["install", "uninstall", "status"])
    p.add_argument("--mode", choices=list(MODES), help="warn (default) or block on clashes")
    p.add_argument("--pre-push", action="store_true", help="also install the pre-push hook")
    p = add(
        "hook-run",
        _cmd_hook_run,
        "run a git hook's check (called by the installed hooks)",
        json_flag=False,
    )
    p.add_argument("hook", choices=list(HOOK_TYPES))
    p.add_argument("args", nargs="*")
    p = add(
        "guard",
        _cmd_guard,
        "Claude Code PreToolUse/PostToolUse hook: claims before edits",
        json_flag=False,
    )
    p.add_argument(
        "--hook",
        action="store_true",
        required=True,
        help="read the hook's JSON from stdin, answer in the hook protocol",
    )
    p.add_argument(
        "--auto-claim",
        action="store_true",
        help="(PostToolUse) claim an edited file nobody claims, for this session",
    )


def _cmd_hooks(args: argparse.Namespace) -> int:
    import json

    cwd = os.getcwd()
    if args.action == "status":
        data = status(cwd)
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            print(f"hooks dir: {data['hooks_dir']}\nmode: {data['mode']}")
            for name, st in data["hooks"].items():
                print(
                    f"{name}: {'installed' if st['installed'] else 'not installed'}"
                    f"{' (chains your own hook)' if st['legacy'] else ''}"
                    f"{' (outdated: run lockd hooks install)' if st['outdated'] else ''}"
                )
        return 0
    lines = install(cwd, args.mode, args.pre_push) if args.action == "install" else uninstall(cwd)
    print(json.dumps(lines) if args.json else "\n".join(lines))
    return 0


def _cmd_guard(args: argparse.Namespace) -> int:
    from lockd.guard import cmd_guard  # only `lockd guard` pays for its imports

    return cmd_guard(args)


def _cmd_hook_run(args: argparse.Namespace) -> int:
    return run_with_stdin(args.hook, args.args)


def run_with_stdin(hook: str, argv: list[str]) -> int:
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    return run(hook, argv, stdin)
