"""The one place the client tests run processes: the pinned agent CLIs (found,
else skipped; failed in CI), a user's environment cleaned of the agent that
may be running these tests, a command run and timed or run and checked, and
the `lockd` CLI as a person at a terminal. `claudecode.py` (Claude Code) and
`agentcli.py` (Codex, Gemini CLI) build their users on these.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lockd.testing import Broker

CLIENTS = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent  # lockd, lockd-mcp of the interpreter running the tests
PINS: dict[str, str] = json.loads((CLIENTS / "package.json").read_text())["dependencies"]
PACKAGES = {
    "claude": "@anthropic-ai/claude-code",
    "codex": "@openai/codex",
    "gemini": "@google/gemini-cli",
}
# Variables of an agent (Claude Code, Codex, Gemini CLI, Cursor) that may be running these tests.
FOREIGN = ("CLAUDE", "ANTHROPIC", "LOCKD_", "MCP_", "OTEL_", "TMUX")
FOREIGN += ("CODEX_", "OPENAI_", "GEMINI_", "GOOGLE_", "CURSOR_")
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def require(name: str, **env: str) -> str:
    """The pinned binary `name` of tests/clients/node_modules (LOCKD_<NAME>_BIN
    overrides); skips without it, except in CI (CI=true), where it fails. `env`
    goes to its `--version`."""
    package, version = PACKAGES[name], PINS[PACKAGES[name]]
    variable = f"LOCKD_{name.upper()}_BIN"
    path = Path(os.environ.get(variable) or CLIENTS / "node_modules" / ".bin" / name)
    install = f"run `npm ci --prefix tests/clients` (installs {package}@{version})"
    install += f" or set {variable}"
    if not (path.is_file() and os.access(path, os.X_OK)):
        reason = f"{name} CLI not installed at {path}: {install}"
    else:
        got = _version(str(path), env)
        if version in got.split():  # "2.1.332 (Claude Code)", "codex-cli 0.171.0", "0.61.0"
            return str(path)
        reason = f"{path} is {name} {got!r}, the tests pin {version}: {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _version(binary: str, env: dict[str, str]) -> str:
    with tempfile.TemporaryDirectory(prefix="lockd-cli-home-") as home:
        homes = {"HOME": home, "CODEX_HOME": home}
        try:
            proc = subprocess.run(
                [binary, "--version"],
                env={**clean_env(), **env, **homes},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unusable ({exc})"
    return proc.stdout.strip() or f"unusable (exit {proc.returncode}: {proc.stderr.strip()[:200]})"


def clean_env() -> dict[str, str]:
    """This process's environment without any agent's variables or proxies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    for key in PROXIES:
        env.pop(key, None)
    return env


def user_env(home: Path, broker: Broker, name: str) -> dict[str, str]:
    """A user's environment on `broker` (LOCKD_NAME `name`), with this venv's
    `lockd` and `lockd-mcp` first on PATH and nothing on loopback proxied."""
    env = clean_env()
    env.update(
        HOME=str(home),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        LOCKD_HOME=str(broker.home),
        LOCKD_PORT=str(broker.port),
        LOCKD_NAME=name,
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


@dataclass
class Run:
    """A finished session of a CLI."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def json(self) -> dict[str, Any]:
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"the CLI printed no JSON result:\n{self}") from None

    def __str__(self) -> str:
        return (
            f"exit {self.returncode}\nstdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}"
        )


def run(command: Sequence[str], cwd: Path | None, env: dict[str, str], timeout: float) -> Run:
    """`command` to its end, stdin closed, timed."""
    started = time.monotonic()
    proc = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def start(command: Sequence[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """The same in the background; `finish()` collects it."""
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.started = time.monotonic()  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> Run:
    out, err = proc.communicate(timeout=timeout)
    return Run(proc.returncode, out, err, time.monotonic() - proc.started)  # type: ignore[attr-defined]


def stop(procs: Sequence[subprocess.Popen[str]]) -> None:
    """Ends those of `procs` still running (a failed test's)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def checked(
    command: Sequence[str],
    cwd: Path | None,
    env: dict[str, str],
    timeout: float = 60,
    what: str = "",
) -> str:
    """What `command` printed; AssertionError when it fails, naming it (`what`,
    else the command itself) with its output."""
    proc = run(command, cwd, env, timeout)
    if proc.returncode != 0:
        what = what or " ".join([Path(command[0]).name, *command[1:]])
        raise AssertionError(f"{what}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def lockd(broker: Broker, cwd: Path, *args: str, name: str | None = None) -> str:
    """The `lockd` CLI as the person at the terminal (LOCKD_NAME `name`)."""
    env = broker.env if name is None else {**broker.env, "LOCKD_NAME": name}
    return checked([str(VENV_BIN / "lockd"), *args], cwd, env, timeout=30)
