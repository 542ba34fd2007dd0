"""The real Codex and Gemini CLIs, run by tests against a real broker and a
scripted model (`fake_models`), with lockd set up in them by `lockd setup
<client>` and nothing hand-written: each user has a temp HOME (and
CODEX_HOME), `setup()` runs the real command in it, `run()` is one headless
session (`codex exec`, `gemini -p … --yolo`). The environment carries the
broker (LOCKD_HOME, LOCKD_PORT, LOCKD_NAME) and keeps the CLIs off the
network: the model API is the fake on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lockd.client.api import Api
from lockd.testing import Broker
from tests.clients.claudecode import FOREIGN, PROXIES
from tests.clients.fake_models import FakeGemini, FakeResponses, Request, Step
from tests.gitutil import make_repo
from tests.polling import wait_for

CLIENTS = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
PINS = json.loads((CLIENTS / "package.json").read_text())["dependencies"]
PACKAGES = {"codex": "@openai/codex", "gemini": "@google/gemini-cli"}
# Variables of an agent that may be running these tests, besides Claude Code's.
OTHERS = ("CODEX_", "OPENAI_", "GEMINI_", "GOOGLE_", "CURSOR_")


def require(name: str) -> str:
    """The pinned binary (LOCKD_<NAME>_BIN overrides); skips without it, except
    in CI (CI=true), where it fails, like the Claude Code tests."""
    package, version = PACKAGES[name], PINS[PACKAGES[name]]
    configured = os.environ.get(f"LOCKD_{name.upper()}_BIN")
    path = Path(configured) if configured else CLIENTS / "node_modules" / ".bin" / name
    install = f"run `npm ci --prefix tests/clients` (installs {package}@{version})"
    if not (path.is_file() and os.access(path, os.X_OK)):
        reason = f"{name} CLI not installed at {path}: {install}"
    else:
        got = _version(str(path))
        if version in got:
            return str(path)
        reason = f"{path} is {name} {got!r}, the tests pin {version}: {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _version(binary: str) -> str:
    with tempfile.TemporaryDirectory(prefix="lockd-cli-home-") as home:
        env = {**clean_env(), "HOME": home, "CODEX_HOME": home}
        try:
            proc = subprocess.run(
                [binary, "--version"], env=env, capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unusable ({exc})"
    return proc.stdout.strip() or f"unusable (exit {proc.returncode}: {proc.stderr[-200:]})"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN + OTHERS)}
    for key in PROXIES:
        env.pop(key, None)
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        return (
            f"exit {self.returncode}\nstdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}"
        )


class AgentCli:
    """One user of one client on this machine, talking to `broker`."""

    client = ""

    def __init__(self, binary: str, broker: Broker, root: Path, cwd: Path, name: str) -> None:
        self.binary, self.broker, self.root, self.cwd, self.name = binary, broker, root, cwd, name
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)

    def base_env(self) -> dict[str, str]:
        env = clean_env()
        env.update(
            HOME=str(self.home),
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            LOCKD_HOME=str(self.broker.home),
            LOCKD_PORT=str(self.broker.port),
            LOCKD_NAME=self.name,
            NO_PROXY="127.0.0.1,localhost",
        )
        return env

    def setup(self, *extra: str) -> dict[str, Any]:
        """`lockd setup <client> --json` in this user's environment."""
        proc = subprocess.run(
            [str(VENV_BIN / "lockd"), "setup", self.client, "--json", *extra],
            cwd=self.cwd,
            env=self.base_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"lockd setup {self.client}: {proc.stdout}{proc.stderr}"
        return json.loads(proc.stdout)

    def command(self, prompt: str) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def model_env(self, fake: Any) -> dict[str, str]:  # pragma: no cover
        raise NotImplementedError

    def run(self, fake: Any, prompt: str = "Work on the task.", timeout: float = 120) -> Run:
        started = time.monotonic()
        proc = subprocess.run(
            self.command(prompt),
            cwd=self.cwd,
            env={**self.base_env(), **self.model_env(fake)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


class Codex(AgentCli):
    """`codex exec` with a `[model_providers.fake]` pointing at a FakeResponses
    (in config.toml, which `lockd setup codex` then edits around)."""

    client = "codex"
    KEY_VAR = "LOCKD_TEST_FAKE_KEY"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codex_home = self.home / ".codex"
        self.codex_home.mkdir(exist_ok=True)

    def use_model(self, fake: FakeResponses) -> None:
        """The user's own config.toml: the model provider (what a user has
        before setting up lockd)."""
        (self.codex_home / "config.toml").write_text(
            "# my Codex settings\n"
            'model = "gpt-5-codex"\n'
            'model_provider = "fake"\n'
            "\n[model_providers.fake]\n"
            'name = "fake"\n'
            f'base_url = "{fake.base_url}"\n'
            'wire_api = "responses"\n'
            f'env_key = "{self.KEY_VAR}"\n'
        )

    def base_env(self) -> dict[str, str]:
        return {**super().base_env(), "CODEX_HOME": str(self.codex_home)}

    def model_env(self, fake: Any) -> dict[str, str]:
        return {self.KEY_VAR: "sk-fake"}

    def command(self, prompt: str) -> list[str]:
        # Approvals off and no sandbox: the test's shell commands run as given
        # (the sandbox needs namespaces a CI container may not allow).
        return [
            self.binary,
            "exec",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "-C",
            str(self.cwd),
            prompt,
        ]


class Gemini(AgentCli):
    """`gemini -p … --yolo` against a FakeGemini."""

    client = "gemini"

    def use_model(self, fake: FakeGemini) -> None:
        folder = self.home / ".gemini"
        folder.mkdir(exist_ok=True)
        settings = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
        (folder / "settings.json").write_text(json.dumps(settings, indent=2))

    def model_env(self, fake: Any) -> dict[str, str]:
        return {
            "GOOGLE_GEMINI_BASE_URL": fake.base_url,
            "GEMINI_API_KEY": "fake-key",
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
        }

    def command(self, prompt: str) -> list[str]:
        return [self.binary, "-p", prompt, "--yolo"]


REASON = "alice rewrites a.py"


def lockd_as(broker: Broker, cwd: Path, name: str, *args: str) -> str:
    """The `lockd` CLI as the person `name` at a terminal."""
    proc = subprocess.run(
        [str(VENV_BIN / "lockd"), *args],
        cwd=cwd,
        env={**broker.env, "LOCKD_NAME": name},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, f"lockd {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def claimed_checkout(tmp_path: Path, broker: Broker) -> Path:
    """A checkout in block mode, src/a.py claimed by alice."""
    root = make_repo(tmp_path / "repo", {"src/a.py": "x = 1\n", "src/b.py": "y = 1\n"})
    lockd_as(broker, root, "alice", "hooks", "install", "--mode", "block")
    lockd_as(broker, root, "alice", "claim", "src/a.py", "--reason", REASON)
    return root


def claims(broker: Broker) -> list[dict[str, Any]]:
    return broker.client().call(Api.locks())["locks"]


def peers(broker: Broker) -> list[dict[str, Any]]:
    return broker.client().call(Api.peers("machine"))["peers"]


def registered(broker: Broker, step: Step) -> Callable[[Request], Step]:
    """`step`, once bob's session is registered: the client starts lockd-mcp
    beside its first model request, and a hook before that knows no session."""

    def answer(request: Request) -> Step:
        wait_for(lambda: any(p["name"] == "bob" for p in peers(broker)), timeout=30)
        return step

    return answer
