"""`lockd hooks`, `lockd hook-run`, `lockd guard` and `lockd agent-hook`: argparse wiring only."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from lockd.local.repo import MODES

INSTALL = (
    "Install lockd's pre-commit hook (and with --pre-push its pre-push hook) where git "
    "runs hooks for this checkout (core.hooksPath honoured; from a linked worktree, the "
    "shared hooks directory). A hook already there is kept as NAME.legacy and still runs "
    "first. --mode sets git config lockd.hookMode for this repository; LOCKD_HOOK_MODE "
    "overrides it. Running it again changes nothing but what you ask."
)
UNINSTALL = (
    "Remove lockd's hooks from this checkout, put back a hook kept as NAME.legacy, and "
    "remove git config lockd.hookMode."
)
STATUS = "Show the hooks directory, the mode in effect, and which of lockd's hooks are there."


def add_commands(
    add: Callable[..., argparse.ArgumentParser],
    add_actions: Callable[..., dict[str, argparse.ArgumentParser]],
) -> None:
    install = add_actions(
        "hooks",
        "install, remove or show lockd's git hooks in this checkout",
        "lockd's git hooks: pre-commit (and pre-push) check the files a commit "
        "touches against other peers' claims in this repo.",
        [
            ("install", _cmd_hooks, "install the hooks here (any checkout or worktree)", INSTALL),
            ("uninstall", _cmd_hooks, "remove lockd's hooks and lockd.hookMode", UNINSTALL),
            ("status", _cmd_hooks, "show which hooks are installed, and the mode", STATUS),
        ],
    )["install"]
    install.add_argument(
        "--mode",
        choices=list(MODES),
        help="warn: print clashes and commit; block: refuse a commit that touches "
        "another peer's exclusive claim. Omitted: the mode already set stays "
        "(warn when none is); install says which",
    )
    install.add_argument("--pre-push", action="store_true", help="also install the pre-push hook")
    p = add(
        "hook-run",
        _cmd_hook_run,
        "run a git hook's check (called by the installed hooks)",
        json_flag=False,
    )
    p.add_argument("hook", choices=["pre-commit", "pre-push"], help="which hook's check to run")
    p.add_argument(
        "args", nargs="*", help="the arguments git gave the hook (pre-push: remote, URL)"
    )
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
    p = add(
        "agent-hook",
        _cmd_agent_hook,
        "Codex, Gemini CLI and Cursor hooks: the guard and the inbox (set up by lockd setup)",
        json_flag=False,
    )
    p.add_argument(
        "client", choices=["codex", "gemini", "cursor"], help="whose hook JSON is on stdin"
    )
    p.add_argument(
        "--auto-claim",
        action="store_true",
        help="(after an edit) claim an edited file nobody claims, for this session",
    )


def _cmd_agent_hook(args: argparse.Namespace) -> int:
    from lockd.agents.hookrun import run_client

    return run_client(args.client, args.auto_claim)


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
