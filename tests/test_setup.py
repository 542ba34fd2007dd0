"""`lockd setup claude-code` and the Claude Code plugin (issue 12).

In-process first (`cli.main`, real files in a temp HOME): what it writes, what
it leaves alone, idempotence, uninstall, dry runs, refusals. Then the real
Claude Code binary reads what setup wrote (and installs the plugin) in a temp
HOME: `claude mcp get`, and a headless `claude -p` against the scripted model
whose hooks must have run. Those skip without the binary, except in CI.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lockd.agents.setup import claude_code
from lockd.agents.setup.edits import Commands, FileEdit, apply, executables, run
from lockd.agents.setup.jsonfile import Moved, load, replace
from lockd.agents.setup.merge import lockd_hook, lockd_server, put_hooks
from lockd.cli import main as cli
from tests.readmehooks import readme_hooks

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
LOCKD, LOCKD_MCP = str(VENV_BIN / "lockd"), str(VENV_BIN / "lockd-mcp")
EDITS = "Edit|Write|MultiEdit|NotebookEdit"
START = "claude --dangerously-load-development-channels server:lockd"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's HOME (and a working directory beside it), nothing in either."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.chdir(work)
    return home


def setup(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["setup", "claude-code", *args])
    out, err = capsys.readouterr()
    return code, out, err


def ours(lockd: str = LOCKD) -> dict[str, Any]:
    """What setup adds to settings.json, as the README's manual config has it."""
    return readme_hooks(lockd)


def write_json(path: Path, data: Any, indent: int = 2) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=indent) + "\n"
    path.write_text(text)
    return text


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# A user's files as Claude Code and the user left them: other servers, other
# hooks (one sharing lockd's matcher), keys lockd knows nothing about.
CLAUDE_JSON = {
    "numStartups": 12,
    "theme": "dark",
    "mcpServers": {"github": {"type": "http", "url": "https://example.com/mcp"}},
    "projects": {"/src/app": {"allowedTools": [], "hasTrustDialogAccepted": True}},
    "userID": "abc",
}
SETTINGS = {
    "permissions": {"allow": ["Bash(git status)"]},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "audit.sh"}]},
            {"matcher": EDITS, "hooks": [{"type": "command", "command": "fmt --check"}]},
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
    "model": "opus",
    "statusLine": {"type": "command", "command": "~/bin/status"},
}


# ---- what it writes -------------------------------------------------------------
def test_an_empty_home_gets_the_server_the_hooks_and_the_command_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = setup(capsys)
    assert code == 0, err
    assert read_json(home / ".claude.json") == {
        "mcpServers": {"lockd": {"type": "stdio", "command": LOCKD_MCP, "args": []}}
    }
    assert read_json(home / ".claude" / "settings.json") == {"hooks": ours()}
    assert stat.S_IMODE((home / ".claude.json").stat().st_mode) == 0o600
    assert f"+ mcpServers.lockd  {LOCKD_MCP}" in out
    assert f"+ hooks.PreToolUse [{EDITS}]  {LOCKD} guard --hook" in out
    assert "write ~/.claude.json, ~/.claude/settings.json" in out
    assert out.rstrip().endswith(START)


def test_everything_else_in_the_files_stays_as_it_was(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_json(home / ".claude.json", CLAUDE_JSON)
    write_json(home / ".claude" / "settings.json", SETTINGS)
    assert setup(capsys)[0] == 0
    config = read_json(home / ".claude.json")
    assert list(config) == list(CLAUDE_JSON)  # key order kept
    assert {k: v for k, v in config.items() if k != "mcpServers"} == {
        k: v for k, v in CLAUDE_JSON.items() if k != "mcpServers"
    }
    assert list(config["mcpServers"]) == ["github", "lockd"]
    assert config["mcpServers"]["github"] == CLAUDE_JSON["mcpServers"]["github"]

    settings = read_json(home / ".claude" / "settings.json")
    assert list(settings) == list(SETTINGS)
    assert {k: v for k, v in settings.items() if k != "hooks"} == {
        k: v for k, v in SETTINGS.items() if k != "hooks"
    }
    hooks = settings["hooks"]
    assert list(hooks) == ["PreToolUse", "Stop", "UserPromptSubmit", "PostToolUse"]
    assert hooks["PreToolUse"] == SETTINGS["hooks"]["PreToolUse"] + ours()["PreToolUse"]
    assert hooks["Stop"] == SETTINGS["hooks"]["Stop"]
    assert hooks["PostToolUse"] == ours()["PostToolUse"]


def test_the_second_run_changes_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_json(home / ".claude" / "settings.json", SETTINGS)
    assert setup(capsys)[0] == 0
    files = [home / ".claude.json", home / ".claude" / "settings.json"]
    before = [(p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in files]
    code, out, _ = setup(capsys)
    assert code == 0
    assert "Claude Code is already set up for lockd (user settings): nothing to change" in out
    assert [(p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in files] == before
    code, out, _ = setup(capsys, "--json")
    report = json.loads(out)
    assert (report["changed"], report["changes"], report["written"]) == (False, [], [])


def test_uninstall_gives_back_the_files_as_they_were(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claude_json = write_json(home / ".claude.json", CLAUDE_JSON)
    settings = write_json(home / ".claude" / "settings.json", SETTINGS, indent=4)
    assert setup(capsys)[0] == 0
    assert (home / ".claude" / "settings.json").read_text().startswith('{\n    "permissions"')
    code, out, _ = setup(capsys, "--uninstall")
    assert code == 0
    assert "- mcpServers.lockd" in out and f"- hooks.UserPromptSubmit  {LOCKD} inbox --hook" in out
    assert (home / ".claude.json").read_text() == claude_json
    assert (home / ".claude" / "settings.json").read_text() == settings
    code, out, _ = setup(capsys, "--uninstall")
    assert "Claude Code is not set up for lockd (user settings): nothing to change" in out


def test_uninstall_after_setting_up_an_empty_home_leaves_no_files(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup(capsys)[0] == 0
    code, out, _ = setup(capsys, "--uninstall")
    assert code == 0
    assert "delete ~/.claude.json, ~/.claude/settings.json (it held only lockd's entries)" in out
    assert not (home / ".claude.json").exists()
    assert not (home / ".claude" / "settings.json").exists()


def test_uninstall_keeps_a_user_hook_that_shares_lockd_s_group(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mixed = {"matcher": EDITS, "hooks": [{"type": "command", "command": "fmt"}]}
    mixed["hooks"].append({"type": "command", "command": "lockd guard --hook"})
    write_json(home / ".claude" / "settings.json", {"hooks": {"PreToolUse": [mixed]}})
    assert setup(capsys, "--uninstall")[0] == 0
    assert read_json(home / ".claude" / "settings.json") == {
        "hooks": {"PreToolUse": [{"matcher": EDITS, "hooks": [mixed["hooks"][0]]}]}
    }


def test_a_dry_run_writes_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = setup(capsys, "--dry-run")
    assert code == 0
    assert "+ mcpServers.lockd" in out and "dry run: nothing written" in out
    assert "would write ~/.claude.json" in out
    assert list(home.iterdir()) == []
    assert setup(capsys)[0] == 0
    before = {p: p.read_bytes() for p in (home / ".claude.json", home / ".claude/settings.json")}
    code, out, _ = setup(capsys, "--uninstall", "--dry-run")
    assert "- mcpServers.lockd" in out and "would delete" in out
    assert {p: p.read_bytes() for p in before} == before


# ---- refusals -----------------------------------------------------------------------
def test_malformed_json_is_refused_naming_the_file_and_line_and_nothing_is_written(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claude_json = write_json(home / ".claude.json", CLAUDE_JSON)
    broken = '{\n  "model": "opus",\n  "hooks": {\n    "Stop": []\n  \n'
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text(broken)
    code, out, err = setup(capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("lockd: ~/.claude/settings.json line 6, column 1:"), err
    assert "nothing was written" in err
    assert (home / ".claude.json").read_text() == claude_json  # valid, and untouched
    assert (home / ".claude" / "settings.json").read_text() == broken
    code, _, err = setup(capsys, "--json")
    error = json.loads(err)
    assert (error["error"], error["detail"]["line"]) == ("invalid", 6)


@pytest.mark.parametrize(
    "name, text, says",
    [
        ("settings.json", '{"hooks": []}', "'hooks' is a JSON list, not an object"),
        ("settings.json", '{"hooks": {"PreToolUse": {}}}', "hooks.PreToolUse is a JSON dict"),
        (".claude.json", '{"mcpServers": "lockd"}', "'mcpServers' is a JSON str"),
        (".claude.json", "[1, 2]", "holds a JSON list, not an object"),
    ],
)
def test_settings_of_the_wrong_shape_are_refused(
    home: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, says: str
) -> None:
    path = home / name if name == ".claude.json" else home / ".claude" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    code, _, err = setup(capsys)
    assert code == 2 and says in err, err
    assert path.read_text() == text
    assert sorted(p.name for p in home.rglob("*") if p.is_file()) == [path.name]


def test_someone_else_s_server_named_lockd_is_a_conflict(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = write_json(home / ".claude.json", {"mcpServers": {"lockd": {"command": "node"}}})
    code, _, err = setup(capsys)
    assert code == 5
    assert "already has an MCP server named 'lockd' that does not run lockd-mcp (node)" in err
    assert (home / ".claude.json").read_text() == text
    assert not (home / ".claude" / "settings.json").exists()
    assert setup(capsys, "--uninstall")[0] == 0  # not ours: left alone
    assert (home / ".claude.json").read_text() == text


# ---- recognising its own entries ---------------------------------------------------------
def test_an_older_install_and_the_readme_s_manual_config_are_taken_over_not_doubled(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"LOCKD_NAME": "api"}
    old = {"type": "stdio", "command": "/old/venv/bin/lockd-mcp", "args": [], "env": env}
    write_json(home / ".claude.json", {"mcpServers": {"lockd": old}})
    write_json(home / ".claude" / "settings.json", {"hooks": ours("lockd")})  # as README
    code, out, _ = setup(capsys)
    assert code == 0
    assert f"~ mcpServers.lockd  /old/venv/bin/lockd-mcp -> {LOCKD_MCP}" in out
    assert f"~ hooks.PreToolUse [{EDITS}]  lockd guard --hook -> {LOCKD} guard --hook" in out
    server = read_json(home / ".claude.json")["mcpServers"]["lockd"]
    assert server == {**old, "command": LOCKD_MCP}  # the user's env stays
    assert read_json(home / ".claude" / "settings.json") == {"hooks": ours()}


def test_paths_with_spaces_are_shell_quoted_and_still_recognised(home: Path) -> None:
    commands = Commands("/opt/my tools/bin/lockd", "/opt/my tools/bin/lockd-mcp")
    result = run("claude-code", commands=commands)
    assert result.changes
    hooks = read_json(home / ".claude" / "settings.json")["hooks"]
    assert hooks["UserPromptSubmit"][0]["hooks"][0]["command"] == (
        "'/opt/my tools/bin/lockd' inbox --hook"
    )
    server = read_json(home / ".claude.json")["mcpServers"]["lockd"]
    assert server["command"] == "/opt/my tools/bin/lockd-mcp"  # exec'd directly: no quotes
    assert not run("claude-code", commands=commands).changes
    assert run("claude-code", uninstall=True).changes
    assert not (home / ".claude" / "settings.json").exists()


@pytest.mark.parametrize(
    "command, key",
    [
        ("lockd inbox --hook", "inbox --hook"),
        ("/venv/bin/lockd guard --hook --auto-claim", "guard --hook --auto-claim"),
        ("'/a b/lockd' guard --hook", "guard --hook"),
        ("C:\\Tools\\lockd.exe inbox --hook", "inbox --hook"),
        ("lockd status", None),
        ("lockd inbox", None),
        ("echo lockd inbox --hook", None),
        ("/bin/lockd-mcp", None),
        ("'unbalanced inbox --hook", None),
        (None, None),
    ],
)
def test_lockd_s_hooks_are_known_by_their_command(command: Any, key: str | None) -> None:
    assert lockd_hook(command) == key


@pytest.mark.parametrize(
    "entry, mine",
    [
        ({"command": "lockd-mcp"}, True),
        ({"type": "stdio", "command": "/x/bin/lockd-mcp", "args": []}, True),
        ({"command": "uvx", "args": ["lockd-mcp"]}, True),
        ({"command": "node", "args": ["server.js"]}, False),
        ({"type": "http", "url": "https://lockd.example.com"}, False),
        ("lockd-mcp", False),
    ],
)
def test_lockd_s_server_is_known_by_its_command(entry: Any, mine: bool) -> None:
    assert lockd_server(entry) is mine


def test_hooks_put_twice_are_one_set() -> None:
    data: dict[str, Any] = {}
    wanted = claude_code.hooks(LOCKD)
    assert len(put_hooks(data, "f", wanted)) == 4
    once = json.dumps(data)
    assert put_hooks(data, "f", wanted) == []
    assert json.dumps(data) == once


# ---- scopes, locations, files ---------------------------------------------------------------
def test_project_scope_writes_this_directory_s_files_only(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = setup(capsys, "--project")
    assert code == 0
    work = Path.cwd()
    assert read_json(work / ".mcp.json")["mcpServers"]["lockd"]["command"] == LOCKD_MCP
    assert read_json(work / ".claude" / "settings.json") == {"hooks": ours()}
    assert stat.S_IMODE((work / ".mcp.json").stat().st_mode) != 0o600  # meant to be shared
    assert list(home.iterdir()) == []
    assert "approve the server 'lockd'" in out and "--use-path" in out
    assert setup(capsys, "--project", "--use-path")[0] == 0
    assert read_json(work / ".claude" / "settings.json") == {"hooks": ours("lockd")}
    assert read_json(work / ".mcp.json")["mcpServers"]["lockd"]["command"] == "lockd-mcp"


def test_claude_config_dir_moves_the_user_files(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = home / "elsewhere"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    assert setup(capsys)[0] == 0
    assert sorted(p.name for p in config.iterdir()) == [".claude.json", "settings.json"]
    assert not (home / ".claude.json").exists()


def test_a_symlinked_settings_file_stays_a_symlink(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dotfiles = home / "dotfiles" / "claude-settings.json"
    write_json(dotfiles, {"model": "opus"})
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").symlink_to(dotfiles)
    assert setup(capsys)[0] == 0
    assert (home / ".claude" / "settings.json").is_symlink()
    assert read_json(dotfiles) == {"model": "opus", "hooks": ours()}
    write_json(dotfiles, {"hooks": ours()})
    assert setup(capsys, "--uninstall")[0] == 0  # emptied, but someone's dotfile: kept
    assert (home / ".claude" / "settings.json").is_symlink()
    assert read_json(dotfiles) == {}


def test_an_enabled_lockd_plugin_is_pointed_out(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_json(home / ".claude" / "settings.json", {"enabledPlugins": {"lockd@lockd": True}})
    code, out, _ = setup(capsys)
    assert code == 0
    assert "note: the lockd plugin (lockd@lockd) is enabled too" in out


def test_json_report(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = setup(capsys, "--json", "--dry-run")
    report = json.loads(out)
    assert code == 0
    assert (report["client"], report["scope"], report["action"]) == (
        "claude-code",
        "user",
        "install",
    )
    assert report["dry_run"] is True and report["start"] == START
    assert report["changes"][0] == {
        "file": "~/.claude.json",
        "action": "add",
        "where": "mcpServers.lockd",
        "new": LOCKD_MCP,
    }
    assert report["written"] == ["~/.claude.json", "~/.claude/settings.json"]


def test_the_executables_are_this_installation_s() -> None:
    assert executables() == Commands(LOCKD, LOCKD_MCP)
    assert executables(use_path=True) == Commands("lockd", "lockd-mcp")


def test_a_file_the_client_rewrites_meanwhile_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write_json(path, {"a": 1})
    rewrites = []

    def install(data: dict[str, Any], name: str) -> Any:
        if not rewrites:  # Claude Code writes the file while we plan
            rewrites.append(1)
            write_json(path, {"a": 1, "b": 2})
        data["lockd"] = True
        return ["changed"]

    apply([FileEdit(path, install, install)], uninstall=False, dry_run=False)
    assert read_json(path) == {"a": 1, "b": 2, "lockd": True}
    stale = load(path)
    write_json(path, {"c": 3})
    with pytest.raises(Moved):
        replace(stale, "{}\n")
    assert read_json(path) == {"c": 3}


# ---- the plugin ---------------------------------------------------------------------------
PLUGIN = ROOT / "plugins" / "lockd"


def test_the_plugin_runs_the_same_hooks_and_server_as_setup_with_path() -> None:
    hooks = read_json(PLUGIN / "hooks" / "hooks.json")["hooks"]
    assert hooks == ours("lockd")
    assert read_json(PLUGIN / ".mcp.json") == {"mcpServers": {"lockd": {"command": "lockd-mcp"}}}
    manifest = read_json(PLUGIN / ".claude-plugin" / "plugin.json")
    assert manifest["channels"] == [{"server": "lockd"}]
    market = read_json(ROOT / ".claude-plugin" / "marketplace.json")
    assert [(p["name"], p["source"]) for p in market["plugins"]] == [("lockd", "./plugins/lockd")]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{manifest["version"]}"' in pyproject  # updates need a version bump


# ---- the real Claude Code ----------------------------------------------------------------------
def claude_binary() -> str:
    """LOCKD_CLAUDE_BIN, else tests/clients' pinned install, else /opt/agents';
    skips without one, except in CI (CI=true), where that is a failure."""
    candidates = [
        os.environ.get("LOCKD_CLAUDE_BIN") or "",
        str(ROOT / "tests" / "clients" / "node_modules" / ".bin" / "claude"),
        "/opt/agents/node_modules/.bin/claude",
    ]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    reason = "no Claude Code CLI (set LOCKD_CLAUDE_BIN, or npm ci --prefix tests/clients)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def real(tmp_path: Path, broker: Any) -> Any:
    """The real `claude` in a temp HOME on the test's broker."""
    from tests.clients.claudecode import API_KEY, QUIET
    from tests.clients.cliproc import clean_env

    binary = claude_binary()
    home = tmp_path / "claude-home"
    home.mkdir()

    class Real:
        def __init__(self) -> None:
            self.home = home
            self.env = {
                **clean_env(),
                **QUIET,
                "HOME": str(home),
                "PATH": "/usr/bin:/bin",  # hooks and server by absolute path, not PATH
                "LOCKD_HOME": str(broker.home),
                "LOCKD_PORT": str(broker.port),
                "LOCKD_NAME": "carol",
                "NO_PROXY": "127.0.0.1,localhost",
            }

        def __call__(self, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
            command = [binary if args[0] == "claude" else args[0], *args[1:]]
            return subprocess.run(
                command,
                cwd=cwd,
                env={**self.env, **env},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        def headless(self, api: Any, tools: str, cwd: Path, **env: str) -> Any:
            """`claude -p` whose model is `api`. (Only here the API key: with
            one and no local ANTHROPIC_BASE_URL, `claude mcp …` and `claude
            plugin …` wait 18 s for api.anthropic.com.)"""
            allowed = f"{tools},Edit,Write,Read"
            return self(
                *("claude", "-p", "Work on the task.", "--output-format", "json"),
                *("--allowedTools", allowed),
                cwd=cwd,
                ANTHROPIC_BASE_URL=api.url,
                ANTHROPIC_API_KEY=API_KEY,
                **env,
            )

    return Real()


def edit_session(repo: Path, tools: str) -> tuple[list[Any], Any]:
    """A model that asks the MCP server who it is, edits a file the person
    claimed, then writes a new one."""
    from tests.clients.fake_anthropic import say, tool_use

    whoami = tool_use(f"{tools}__whoami")
    edit = tool_use("Edit", file_path=str(repo / "a.py"), old_string="x = 1", new_string="x = 2")
    write = tool_use("Write", file_path=str(repo / "notes.md"), content="notes\n")
    return [whoami, edit, write, say("done")], (whoami, edit, write)


def lockd_cli(broker: Any, cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        [LOCKD, *args], cwd=cwd, env=broker.env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def assert_hooks_ran(api: Any, steps: Any) -> None:
    whoami, edit, write = steps
    turns = api.turns
    assert len(turns) == 4, [t.last_text()[:300] for t in turns]
    me = turns[1].tool_results()[whoami.id]  # the MCP server answered, as this session
    assert not me["is_error"] and json.loads(me["text"])["name"].startswith("carol"), me
    after_edit = turns[2].last_text()  # PreToolUse: the guard named the person's claim
    assert "a.py is claimed by" in after_edit and "the person's refactor" in after_edit, after_edit
    after_write = turns[3].last_text()  # PostToolUse: the guard claimed the new file for carol
    assert "claimed notes.md for you" in after_write, after_write


def test_real_claude_code_runs_what_setup_wrote_and_stops_after_uninstall(
    real: Any, broker: Any, tmp_path: Path
) -> None:
    from tests.clients.fake_anthropic import FakeAnthropic
    from tests.gitutil import make_repo

    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    lockd_cli(broker, repo, "claim", "a.py", "-r", "the person's refactor")
    done = real(LOCKD, "setup", "claude-code", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert START in done.stdout

    got = real("claude", "mcp", "get", "lockd", cwd=repo)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "Scope: User config" in got.stdout and "Connected" in got.stdout, got.stdout
    assert f"Command: {LOCKD_MCP}" in got.stdout

    script, steps = edit_session(repo, "mcp__lockd")
    with FakeAnthropic(script) as api:
        ran = real.headless(api, "mcp__lockd", cwd=repo)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert not api.errors, api.errors
    assert_hooks_ran(api, steps)

    gone = real(LOCKD, "setup", "claude-code", "--uninstall", cwd=repo)
    assert gone.returncode == 0, gone.stderr
    listed = real("claude", "mcp", "list", cwd=repo)
    assert "lockd" not in listed.stdout, listed.stdout


def test_real_claude_code_installs_the_plugin_from_this_repository(
    real: Any, broker: Any, tmp_path: Path
) -> None:
    from tests.clients.fake_anthropic import FakeAnthropic
    from tests.gitutil import make_repo

    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    for target in (ROOT, PLUGIN):
        valid = real("claude", "plugin", "validate", "--strict", str(target), cwd=repo)
        assert valid.returncode == 0, valid.stdout + valid.stderr
    on_path = {"PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin"}  # the plugin runs lockd from PATH
    added = real("claude", "plugin", "marketplace", "add", str(ROOT), cwd=repo, **on_path)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "Successfully added marketplace: lockd" in added.stdout
    installed = real("claude", "plugin", "install", "lockd@lockd", cwd=repo, **on_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listed = real("claude", "plugin", "list", cwd=repo, **on_path)
    assert "lockd@lockd" in listed.stdout and "enabled" in listed.stdout, listed.stdout
    servers = real("claude", "mcp", "list", cwd=repo, **on_path)
    assert "plugin:lockd:lockd: lockd-mcp" in servers.stdout, servers.stdout
    assert "Connected" in servers.stdout, servers.stdout

    lockd_cli(broker, repo, "claim", "a.py", "-r", "the person's refactor")
    script, steps = edit_session(repo, "mcp__plugin_lockd_lockd")
    with FakeAnthropic(script) as api:
        ran = real.headless(api, "mcp__plugin_lockd_lockd", cwd=repo, **on_path)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert not api.errors, api.errors
    assert_hooks_ran(api, steps)
