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
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from lockd.client.api import Api
from lockd.testing import Broker
from tests.clients import cliproc
from tests.clients.cliproc import VENV_BIN, Run, lockd
from tests.clients.fake_models import FakeGemini, FakeResponses, Request, Step
from tests.gitutil import make_repo
from tests.polling import wait_for


class AgentCli:
    """One user of one client on this machine, talking to `broker`."""

    client = ""

    def __init__(self, binary: str, broker: Broker, root: Path, cwd: Path, name: str) -> None:
        self.binary, self.broker, self.root, self.cwd, self.name = binary, broker, root, cwd, name
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)

    @classmethod
    def set_up(cls, binary: str, broker: Broker, tmp_path: Path, cwd: Path, fake: Any) -> Self:
        """bob, a user of this client on `fake`'s model, with `lockd setup` run."""
        user = cls(binary, broker, tmp_path / f"{cls.client}-bob", cwd, "bob")
        user.use_model(fake)
        result = user.setup()
        assert result["changed"], result
        return user

    def use_model(self, fake: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def base_env(self) -> dict[str, str]:
        return cliproc.user_env(self.home, self.broker, self.name)

    def setup(self, *extra: str) -> dict[str, Any]:
        """`lockd setup <client> --json` in this user's environment."""
        command = [str(VENV_BIN / "lockd"), "setup", self.client, "--json", *extra]
        return json.loads(cliproc.checked(command, self.cwd, self.base_env()))

    def command(self, prompt: str) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def model_env(self, fake: Any) -> dict[str, str]:  # pragma: no cover
        raise NotImplementedError

    def run(self, fake: Any, prompt: str = "Work on the task.", timeout: float = 120) -> Run:
        env = {**self.base_env(), **self.model_env(fake)}
        return cliproc.run(self.command(prompt), self.cwd, env, timeout)


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


def claimed_checkout(tmp_path: Path, broker: Broker) -> Path:
    """A checkout in block mode, src/a.py claimed by alice."""
    root = make_repo(tmp_path / "repo", {"src/a.py": "x = 1\n", "src/b.py": "y = 1\n"})
    lockd(broker, root, "hooks", "install", "--mode", "block", name="alice")
    lockd(broker, root, "claim", "src/a.py", "--reason", REASON, name="alice")
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
