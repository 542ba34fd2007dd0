"""`lockd hooks`, `lockd hook-run` and `lockd guard`: argparse wiring only."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from lockd.local.repo import MODES


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
    p.add_argument("hook", choices=["pre-commit", "pre-push"])
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

    from lockd.githooks.install import install, status, uninstall

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
    from lockd.agents.guard import cmd_guard  # only `lockd guard` pays for its imports

    return cmd_guard(args)


def _cmd_hook_run(args: argparse.Namespace) -> int:
    from lockd.githooks.check import run_with_stdin

    return run_with_stdin(args.hook, args.args)
