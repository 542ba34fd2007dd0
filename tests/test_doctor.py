"""`lockd doctor`: every client found, whether lockd is set up in it, the
broker, the checkout's git hooks; a problem comes with its fix, and the exit
code says whether there was one."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from lockd.agents.setup.edits import run as setup
from lockd.cli import main as cli
from lockd.testing import Broker
from tests.gitutil import make_repo


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    venv = str(Path(sys.executable).parent)  # lockd-mcp resolves; no agent CLI on PATH
    monkeypatch.setenv("PATH", f"{venv}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return home


def doctor(capsys: pytest.CaptureFixture[str], cwd: Path) -> tuple[int, dict[str, Any]]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = cli.main(["doctor", "--json"])
    finally:
        os.chdir(old)
    return code, json.loads(capsys.readouterr().out)


def by_subject(data: dict[str, Any], subject: str) -> list[dict[str, Any]]:
    return [c for c in data["checks"] if c["subject"] == subject]


def test_a_client_not_set_up_fails_with_its_fix_then_passes(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / ".codex").mkdir()  # Codex is here (its settings folder)
    repo = make_repo(tmp_path / "repo", {"a.py": "x\n"})
    code, data = doctor(capsys, repo)
    assert code == 1 and data["ok"] is False
    codex = by_subject(data, "codex")
    assert codex[0]["ok"] is False and codex[0]["fix"] == "lockd setup codex"
    assert "hooks.PreToolUse" in codex[0]["detail"]
    assert by_subject(data, "broker")[0]["ok"] is True
    hooks = by_subject(data, "git hooks")[0]
    assert hooks["ok"] is False and hooks["fix"] == "lockd hooks install"
    assert not by_subject(data, "gemini")  # not on this machine: not asked about

    setup("codex")
    os.chdir(repo)
    try:
        assert cli.main(["hooks", "install"]) == 0
    finally:
        os.chdir(tmp_path)
    capsys.readouterr()
    code, data = doctor(capsys, repo)
    assert code == 0, data
    assert [c["what"] for c in by_subject(data, "codex")] == [
        "lockd set up (user settings)", "lockd-mcp resolves from its config"
    ]  # fmt: skip


def test_untrusted_codex_hooks_are_a_problem(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup("codex")
    config = home / ".codex" / "config.toml"
    config.write_text(config.read_text().replace("trusted_hash", "# trusted_hash"))
    code, data = doctor(capsys, tmp_path)
    assert code == 1
    codex = by_subject(data, "codex")[0]
    assert not codex["ok"] and "hooks.state" in codex["detail"]


def test_a_lockd_mcp_that_does_not_run_is_named(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"mcpServers": {"lockd": {"command": "/gone/lockd-mcp"}}}))
    code, data = doctor(capsys, tmp_path)
    assert code == 1
    resolves = [c for c in by_subject(data, "gemini") if "resolves" in c["what"]][0]
    assert not resolves["ok"] and "/gone/lockd-mcp" in resolves["detail"]
