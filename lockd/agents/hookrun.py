"""Running one agent hook, for every client: the payload from stdin, the
adapter's answer as JSON on stdout, and never in the agent's way (bad input or
no broker: a note on stderr, exit 0, the edit goes ahead unchecked)."""

from __future__ import annotations

import json
import sys

from lockd.core.errors import LockdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Answer = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def read_payload(name: str, stdin: str | None = None) -> dict[str, Any] | None:
    if stdin is None:
        stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    try:
        payload = json.loads(stdin) if stdin.strip() else {}
    except ValueError:
        payload = None
    if not isinstance(payload, dict):  # `[]`, `"x"`, `3` parse too, and would crash
        print(f"lockd {name}: stdin is not the hook's JSON; nothing checked", file=sys.stderr)
        return None
    return payload


def run(name: str, answer: Answer, stdin: str | None = None) -> int:
    """Answer one hook payload; `name` says who speaks on stderr."""
    payload = read_payload(name, stdin)
    if payload is None:
        return 0
    try:
        out = answer(payload)
    except LockdError as exc:
        if exc.kind == "unavailable":
            print(
                f"lockd {name}: broker not reachable; edit not checked ({exc.message})",
                file=sys.stderr,
            )
        else:
            print(f"lockd {name}: {exc.message}", file=sys.stderr)
        return 0
    if out:
        print(json.dumps(out))
    return 0


ADAPTERS = {  # `lockd agent-hook CLIENT`: the module whose answer() speaks its dialect
    "codex": "lockd.agents.codex",
    "gemini": "lockd.agents.gemini",
    "cursor": "lockd.agents.cursor",
}


def run_client(client: str, auto_claim: bool = False, stdin: str | None = None) -> int:
    """`lockd agent-hook CLIENT [--auto-claim]`."""
    if client not in ADAPTERS:
        print(
            f"lockd agent-hook: unknown client {client!r}: one of {', '.join(ADAPTERS)} "
            "(Claude Code uses `lockd guard --hook` and `lockd inbox --hook`)",
            file=sys.stderr,
        )
        return 2
    import importlib

    adapter = importlib.import_module(ADAPTERS[client])
    return run(f"agent-hook {client}", lambda p: adapter.answer(p, auto_claim), stdin)
