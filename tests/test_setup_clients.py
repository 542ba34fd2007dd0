"""`lockd setup codex|gemini|cursor`: each client's own files, merged around
what the user has there, idempotent and reversible (`test_setup.py` covers
what all clients share, through Claude Code)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lockd.agents.setup import codex
from lockd.agents.setup.edits import Commands, run
from lockd.cli import main as cli
from lockd.core.errors import LockdError

COMMANDS = Commands("/opt/lockd/bin/lockd", "/opt/lockd/bin/lockd-mcp")
USER_TOML = """# my Codex settings
model = "o3"  # the one I like

[model_providers.mine]
base_url = "http://localhost:1234/v1"

[mcp_servers.other]
command = "other-mcp"

[hooks.state."/elsewhere/hooks.json:stop:0:0"]
trusted_hash = "sha256:mine"
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (tmp_path / "work").mkdir()
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.chdir(tmp_path / "work")
    return home


def setup(client: str, *flags: str, cwd: Path | None = None) -> Any:
    scope = "project" if "--project" in flags else "user"
    return run(client, scope, uninstall="--uninstall" in flags, dry_run="--dry-run" in flags,
               cwd=cwd, commands=COMMANDS)  # fmt: skip


# ---- Codex ---------------------------------------------------------------------
def test_codex_keeps_the_users_toml_and_trusts_exactly_its_hooks(home: Path) -> None:
    config = home / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text(USER_TOML)
    result = setup("codex")
    assert result.changes and set(result.written) == {"~/.codex/hooks.json", "~/.codex/config.toml"}
    text = config.read_text()
    assert text.startswith(USER_TOML.split("[hooks.state")[0])  # comments, order, spacing
    data = tomllib.loads(text)
    assert data["mcp_servers"]["lockd"]["command"] == COMMANDS.lockd_mcp
    assert "LOCKD_HOME" in data["mcp_servers"]["lockd"]["env_vars"]
    assert data["mcp_servers"]["other"] == {"command": "other-mcp"}
    hooks = json.loads((home / ".codex" / "hooks.json").read_text())["hooks"]
    assert set(hooks) == {"UserPromptSubmit", "PreToolUse", "PostToolUse"}
    state = data["hooks"]["state"]
    hooks_file = home / ".codex" / "hooks.json"
    for event, snake in (("PreToolUse", "pre_tool_use"), ("PostToolUse", "post_tool_use")):
        group = hooks[event][0]
        key = f"{hooks_file}:{snake}:0:0"
        assert state[key]["trusted_hash"] == codex.hook_hash(
            event, group["matcher"], group["hooks"][0]
        )
    assert state["/elsewhere/hooks.json:stop:0:0"] == {"trusted_hash": "sha256:mine"}

    assert not setup("codex").changes  # idempotent
    setup("codex", "--uninstall")
    assert config.read_text() == USER_TOML  # exactly what the user had
    assert not hooks_file.exists()


def test_codex_trust_follows_its_hooks_behind_the_users_own(home: Path) -> None:
    hooks_file = home / ".codex" / "hooks.json"
    hooks_file.parent.mkdir()
    mine = {"matcher": "Bash", "hooks": [{"type": "command", "command": "my-check"}]}
    hooks_file.write_text(json.dumps({"hooks": {"PreToolUse": [mine]}}))
    setup("codex")
    state = tomllib.loads((home / ".codex" / "config.toml").read_text())["hooks"]["state"]
    assert f"{hooks_file}:pre_tool_use:1:0" in state  # after the user's group
    assert f"{hooks_file}:pre_tool_use:0:0" not in state  # the user's: theirs to trust
    setup("codex", "--uninstall")
    assert json.loads(hooks_file.read_text()) == {"hooks": {"PreToolUse": [mine]}}
    assert not (home / ".codex" / "config.toml").exists()


def test_codex_hash_is_codexs_own() -> None:
    """The value Codex 0.171.0 accepted in tests/clients (a hook that ran)."""
    identity = codex.hook_hash("PreToolUse", "^Bash$", {"command": "echo hi"})
    assert identity.startswith("sha256:") and len(identity) == 71
    assert codex.hook_hash("UserPromptSubmit", "x", {"command": "c"}) == codex.hook_hash(
        "UserPromptSubmit", None, {"command": "c", "timeout": 600, "async": False}
    )  # matchers mean nothing there; unset timeout is 600


def test_codex_project_scope_and_its_note(home: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    result = setup("codex", "--project", cwd=work)
    assert (work / ".codex" / "config.toml").exists() and (work / ".codex" / "hooks.json").exists()
    state = tomllib.loads((home / ".codex" / "config.toml").read_text())["hooks"]["state"]
    assert all(k.startswith(str(work / ".codex" / "hooks.json")) for k in state)
    assert any("trust_level" in n for n in result.notes)


def test_a_malformed_toml_is_named_and_nothing_is_written(home: Path) -> None:
    config = home / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text('model = "o3"\n[mcp_servers\n')
    with pytest.raises(LockdError) as err:
        setup("codex")
    assert "~/.codex/config.toml line 2" in err.value.message
    assert config.read_text() == 'model = "o3"\n[mcp_servers\n'
    assert not (home / ".codex" / "hooks.json").exists()


# ---- Gemini CLI and Cursor ----------------------------------------------------------
def test_gemini_merges_into_its_settings_and_takes_itself_out(home: Path) -> None:
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir()
    mine = {"security": {"auth": {"selectedType": "gemini-api-key"}}, "theme": "Dracula"}
    settings.write_text(json.dumps(mine, indent=2) + "\n")
    setup("gemini")
    data = json.loads(settings.read_text())
    assert data["mcpServers"]["lockd"]["command"] == COMMANDS.lockd_mcp
    assert set(data["hooks"]) == {"BeforeAgent", "BeforeTool", "AfterTool"}
    assert "run_shell_command" in data["hooks"]["BeforeTool"][0]["matcher"]
    assert data["theme"] == "Dracula"
    assert not setup("gemini").changes
    setup("gemini", "--uninstall")
    assert json.loads(settings.read_text()) == mine


def test_cursor_writes_its_flat_hooks_and_removes_what_it_alone_wrote(home: Path) -> None:
    setup("cursor")
    hooks = json.loads((home / ".cursor" / "hooks.json").read_text())
    assert hooks["version"] == 1
    assert hooks["hooks"]["preToolUse"] == [{"command": f"{COMMANDS.lockd} agent-hook cursor"}]
    assert "afterFileEdit" in hooks["hooks"]
    mcp = json.loads((home / ".cursor" / "mcp.json").read_text())
    assert mcp["mcpServers"]["lockd"]["command"] == COMMANDS.lockd_mcp
    assert not setup("cursor").changes
    result = setup("cursor", "--uninstall")
    assert set(result.removed) == {"~/.cursor/hooks.json", "~/.cursor/mcp.json"}


def test_the_cli_takes_every_client(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for client in ("codex", "gemini", "cursor"):
        assert cli.main(["setup", client, "--dry-run", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["client"] == client and out["dry_run"] and out["changed"]
    assert not (home / ".codex").exists() and not (home / ".gemini").exists()
