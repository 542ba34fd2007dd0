"""The Claude Code hooks exactly as the README's hand-written config spells
them ("Claude Code, by hand"), read from README.md itself: the one expectation
that `lockd setup claude-code` (tests/test_setup.py) and the real-client tests'
manual config (tests/clients/) share, independent of lockd's own setup code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"
JSON_BLOCK = re.compile(r"^```json\n(.*?)^```", re.S | re.M)


def readme_hooks(lockd: str = "lockd") -> dict[str, Any]:
    """The `hooks` object of the README's settings.json example, with each
    command's leading `lockd` replaced by `lockd` (an absolute path, say)."""
    for block in JSON_BLOCK.findall(README.read_text()):
        data = json.loads(block)
        if "UserPromptSubmit" in data.get("hooks", {}):
            return _with_lockd(data["hooks"], lockd)
    raise AssertionError(f"no settings.json example with hooks in {README}")


def _with_lockd(node: Any, lockd: str) -> Any:
    if isinstance(node, dict):
        return {key: _with_lockd(value, lockd) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_lockd(item, lockd) for item in node]
    if isinstance(node, str) and node.startswith("lockd "):  # a hook's command
        return lockd + node[len("lockd") :]
    return node
