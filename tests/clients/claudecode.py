"""The real Claude Code CLI, run by tests against a real broker.

Each `ClaudeCode` is one user's setup: a temp HOME, and lockd set up in it one
of three ways (`SETUPS`): "manual", an MCP config that starts this checkout's
`lockd-mcp` and settings with the README's hooks (absolute paths to this venv's
`lockd`), passed by --mcp-config/--settings; "setup", whatever `lockd setup
claude-code` wrote into that HOME; "plugin", the plugin of this repository's
marketplace, installed by `claude plugin install`. The last two add no flag
and no file of their own. `run()` is one headless `claude -p` session;
`start()` is the same in the background (its model answers come from a
`FakeAnthropic`, whose held steps keep it alive); `interactive()` runs the TUI
under tmux. The environment carries the broker (LOCKD_HOME, LOCKD_PORT) to the
MCP server and the hooks (the only way there with "setup" and "plugin", which
have no per-server env; PATH starts with this venv's bin, for the plugin's bare
`lockd` and `lockd-mcp`), and keeps Claude Code off the network: the model API
is the fake on 127.0.0.1, and everything else it would fetch is switched off.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lockd.testing import Broker
from tests.clients import cliproc
from tests.clients.cliproc import CLIENTS, VENV_BIN, Run
from tests.clients.fake_anthropic import FakeAnthropic
from tests.readmehooks import readme_hooks

ROOT = CLIENTS.parents[1]  # this checkout: also the plugin marketplace "lockd"
API_KEY = "sk-ant-api03-lockd-tests-0123456789abcdefghij"  # any value: the fake never checks it

# Off: auto-update, telemetry, error reports, the feedback survey, and with
# the first one the MCP registry fetch and the `HEAD /api/hello` connectivity
# check: all that 2.1.332 sends anywhere but the model (its --debug log shows
# them; here each fails at once on api.anthropic.com, none hangs).
QUIET = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
}
# A headless session waits for its MCP servers before its first request (the
# deadline ends as soon as lockd is connected). By default 2.1.332 connects them
# "fully async": on a loaded machine the first request can go out before lockd's
# tools are listed, and a model cannot call what it was not offered.
WAIT_FOR_MCP = {"MCP_CONNECTION_NONBLOCKING": "false", "MCP_CONNECT_TIMEOUT_MS": "30000"}

# How lockd is set up in a user's Claude Code, and the MCP server's name there
# (its tools are `mcp__NAME__tool`, NAME's other characters as `_`).
SETUPS = ("manual", "setup", "plugin")
SERVERS = {"manual": "lockd", "setup": "lockd", "plugin": "plugin:lockd:lockd"}
# A test that runs once per set-up (the `lockd_setup` fixture of conftest.py).
every_setup = pytest.mark.parametrize("lockd_setup", SETUPS, indirect=True)


def require_claude() -> str:
    """The pinned binary; skips without it, except in CI (CI=true), where it fails."""
    return cliproc.require("claude", **QUIET)


def lockd_tool(tool: str) -> str:
    """The name pattern of lockd's MCP tool `tool`, whatever the server is
    named: the fake model calls the one the request offers (see fake_anthropic)."""
    return f"mcp__*lockd__{tool}"


@dataclass
class ClaudeCode:
    """One user's Claude Code on this machine, talking to `broker`."""

    binary: str
    broker: Broker
    root: Path  # this user's files: HOME, MCP config, settings
    cwd: Path
    name: str = "claude"  # LOCKD_NAME: the peer's readable name
    setup: str = "manual"  # one of SETUPS
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.setup not in SETUPS:
            raise ValueError(f"setup {self.setup!r} is not one of {SETUPS}")
        self.home = self.root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.mcp_config = self.root / "mcp.json"
        self.settings = self.root / "settings.json"
        if self.setup == "manual":
            lockd_env = {
                "LOCKD_HOME": str(self.broker.home),
                "LOCKD_PORT": str(self.broker.port),
                "LOCKD_NAME": self.name,
            }
            server = {"command": str(VENV_BIN / "lockd-mcp"), "args": [], "env": lockd_env}
            self.mcp_config.write_text(json.dumps({"mcpServers": {"lockd": server}}))
            # README "Connect your agents", with this venv's `lockd` by absolute path.
            self.settings.write_text(json.dumps({"hooks": readme_hooks(str(VENV_BIN / "lockd"))}))
        elif self.setup == "setup":
            self.configure(str(VENV_BIN / "lockd"), "setup", "claude-code")
        else:
            # A directory marketplace: 2.1.332 copies the plugin into
            # ~/.claude/plugins/cache, but runs the hooks and server of the
            # checkout's plugins/lockd (an edit of the copy changes nothing).
            self.configure(self.binary, "plugin", "marketplace", "add", str(ROOT))
            self.configure(self.binary, "plugin", "install", "lockd@lockd")

    def configure(self, *command: str) -> str:
        """One setup command in this user's environment (no model: without
        ANTHROPIC_BASE_URL and the key, `claude plugin …` asks nobody)."""
        return cliproc.checked(command, self.cwd, self.base_env())

    @property
    def server(self) -> str:
        """The lockd MCP server's name in this Claude Code."""
        return SERVERS[self.setup]

    @property
    def tools(self) -> str:
        """What lockd's MCP tools are called here: `mcp__lockd`, for `--allowedTools`."""
        return "mcp__" + re.sub(r"[^A-Za-z0-9_-]", "_", self.server)

    def tool(self, tool: str) -> str:
        """The full name of lockd's MCP tool `tool` here."""
        return f"{self.tools}__{tool}"

    # ---- environment ----------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        return {**cliproc.user_env(self.home, self.broker, self.name), **QUIET, **WAIT_FOR_MCP}

    def env(self, fake: FakeAnthropic) -> dict[str, str]:
        return {**self.base_env(), "ANTHROPIC_BASE_URL": fake.url, "ANTHROPIC_API_KEY": API_KEY}

    def args(self, *extra: str) -> list[str]:
        if self.setup != "manual":  # only what setup or the plugin wrote into HOME
            return [self.binary, *extra]
        return [
            self.binary,
            "--mcp-config",
            str(self.mcp_config),
            "--strict-mcp-config",
            "--settings",
            str(self.settings),
            *extra,
        ]

    def allowed(self, *tools: str) -> list[str]:
        return ["--allowedTools", ",".join((self.tools, *tools))]

    # ---- headless sessions ----------------------------------------------------
    def headless(self, prompt: str, tools: tuple[str, ...], extra: tuple[str, ...]) -> list[str]:
        return self.args("-p", prompt, "--output-format", "json", *self.allowed(*tools), *extra)

    def run(
        self,
        fake: FakeAnthropic,
        prompt: str = "Work on the task.",
        tools: tuple[str, ...] = ("Read", "Edit", "Write", "Bash"),
        extra: tuple[str, ...] = (),
        timeout: float = 60,
    ) -> Run:
        return cliproc.run(self.headless(prompt, tools, extra), self.cwd, self.env(fake), timeout)

    def start(
        self,
        fake: FakeAnthropic,
        prompt: str = "Work on the task.",
        tools: tuple[str, ...] = ("Read", "Edit", "Write", "Bash"),
        extra: tuple[str, ...] = (),
    ) -> subprocess.Popen[str]:
        """The same session in the background; `finish()` collects it."""
        proc = cliproc.start(self.headless(prompt, tools, extra), self.cwd, self.env(fake))
        self.procs.append(proc)
        return proc

    finish = staticmethod(cliproc.finish)

    def close(self) -> None:
        """Ends whatever this user's sessions left running (a failed test's)."""
        cliproc.stop(self.procs)

    # ---- the interactive TUI ----------------------------------------------------
    def skip_onboarding(self) -> None:
        """What a first interactive start would ask, answered beforehand in
        ~/.claude.json: onboarding done (else it first checks it can reach
        api.anthropic.com, and stops when it cannot), the API key from the
        environment approved (by its last 20 characters), this folder trusted."""
        path = self.home / ".claude.json"
        config: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        config.update(hasCompletedOnboarding=True, theme="dark")
        config.setdefault("customApiKeyResponses", {"approved": [], "rejected": []})
        config["customApiKeyResponses"]["approved"].append(API_KEY[-20:])
        project = config.setdefault("projects", {}).setdefault(str(self.cwd), {})
        project.update(hasTrustDialogAccepted=True, hasCompletedProjectOnboarding=True)
        path.write_text(json.dumps(config))

    @contextlib.contextmanager
    def interactive(self, fake: FakeAnthropic, *extra: str) -> Iterator[Tmux]:
        """`claude` in a tmux pane (a pseudo-terminal), ended on exit."""
        if shutil.which("tmux") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("CI=true and tmux is not installed (apt-get install tmux)")
            pytest.skip("tmux not installed (apt-get install tmux)")
        self.skip_onboarding()
        env = self.env(fake)
        env["TERM"] = "xterm-256color"
        tmux = Tmux(f"lockd-test-{uuid.uuid4().hex[:12]}", env)
        command = self.args(*extra)
        settings = [a for key, value in env.items() for a in ("-e", f"{key}={value}")]
        size = ("-x", "160", "-y", "48")
        tmux.cmd(
            "-f", "/dev/null", "new-session", "-d", *size, "-c", str(self.cwd), *settings, *command
        )
        try:
            yield tmux
        finally:
            tmux.kill()

    # ---- what Claude Code wrote ----------------------------------------------------
    def debug_log(self) -> str:
        """The newest `--debug` log under $HOME/.claude/debug/ ("" before there is one)."""
        folder = self.home / ".claude" / "debug"
        logs = (
            sorted(folder.glob("*.txt"), key=lambda p: p.stat().st_mtime) if folder.exists() else []
        )
        return logs[-1].read_text(errors="replace") if logs else ""


@dataclass
class Tmux:
    socket: str  # `tmux -L`: a private server, so the test never meets a user's
    env: dict[str, str]

    def cmd(self, *args: str) -> str:
        command = ["tmux", "-L", self.socket, *args]
        what = f"tmux {' '.join(args[:3])}…"
        return cliproc.checked(command, None, self.env, timeout=10, what=what)

    def screen(self) -> str:
        try:
            return self.cmd("capture-pane", "-p")
        except AssertionError as exc:  # the pane is gone: claude exited
            return f"(no screen: {exc})"

    def keys(self, *keys: str) -> None:
        self.cmd("send-keys", *keys)

    def kill(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self.cmd("kill-server")
