"""Fixtures for the real-client tests: the CLI (skipped without it, failed in
CI), and a factory of Claude Code users on the test's real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lockd.testing import Broker
from tests.clients.claudecode import ClaudeCode, require_claude


@pytest.fixture(scope="session")
def claude_bin() -> str:
    return require_claude()


@pytest.fixture
def claude(claude_bin: str, broker: Broker, tmp_path: Path) -> Iterator[Callable[..., ClaudeCode]]:
    """`claude(name, cwd)`: a Claude Code user with its own HOME on `broker`."""
    made: list[ClaudeCode] = []

    def make(name: str, cwd: Path) -> ClaudeCode:
        user = ClaudeCode(claude_bin, broker, tmp_path / "claude" / name, cwd, name)
        made.append(user)
        return user

    yield make
    for user in made:
        user.close()
