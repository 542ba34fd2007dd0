"""Fixtures for the real-client tests: each pinned CLI (skipped without it, failed in
CI), how lockd is set up in it, and a factory of Claude Code users on the
test's real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lockd.testing import Broker
from tests.clients.claudecode import SETUPS, ClaudeCode, require_claude
from tests.clients.cliproc import require


@pytest.fixture(scope="session")
def claude_bin() -> str:
    return require_claude()


@pytest.fixture(scope="session")
def codex_bin() -> str:
    return require("codex")


@pytest.fixture(scope="session")
def gemini_bin() -> str:
    return require("gemini")


@pytest.fixture
def lockd_setup(request: pytest.FixtureRequest) -> str:
    """How lockd is set up in each user's Claude Code (claudecode.SETUPS):
    "manual" unless the test is marked `@every_setup`, which runs it once each."""
    setup = getattr(request, "param", "manual")
    assert setup in SETUPS, setup
    return setup


@pytest.fixture
def claude(
    claude_bin: str, broker: Broker, tmp_path: Path, lockd_setup: str
) -> Iterator[Callable[..., ClaudeCode]]:
    """`claude(name, cwd)`: a Claude Code user with its own HOME on `broker`,
    lockd set up in it the `lockd_setup` way."""
    made: list[ClaudeCode] = []

    def make(name: str, cwd: Path) -> ClaudeCode:
        root = tmp_path / "claude" / name
        user = ClaudeCode(claude_bin, broker, root, cwd, name, setup=lockd_setup)
        made.append(user)
        return user

    yield make
    for user in made:
        user.close()
