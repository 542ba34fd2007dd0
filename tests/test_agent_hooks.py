"""`lockd agent-hook CLIENT` fed the JSON each client sends, against a real
broker: one decision (`lockd.agents.decisions`), in each client's dialect.
Codex and Gemini CLI also run inside the real CLIs (tests/clients); Cursor
has no CLI that can run here, so its payloads are the documented ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.local.processes import process_start_time
from lockd.local.repo import identify
from lockd.testing import Broker
from tests.gitutil import git
from tests.hookcli import run_hook
from tests.test_guard import REASON, locks_of, register

PY = sys.executable
SHARED_BROKER = True
REPO_FILES = {"db/schema.sql": "s\n", "app.py": "a\n"}


@pytest.fixture
def bob(broker: Broker, repo: Path) -> Client:
    """Another peer, claiming db/."""
    peer = register(broker, repo, "bob")
    assert peer.call(Api.announce(identify(str(repo)).repo_id, ["db/"], REASON))["granted"]
    return peer


@pytest.fixture
def session(broker: Broker, repo: Path) -> Iterator[Client]:
    """An agent session whose agent process is this test process (the hook
    finds it by walking up its ancestors, as from any client)."""
    peer = register(broker, repo, "agent")
    info: dict[str, Any] = peer.peer  # type: ignore[attr-defined]
    path = broker.home / "sessions" / "agent-hooks-test.json"
    path.parent.mkdir(exist_ok=True)
    record = {"credential": peer.credential, "peer_id": info["peer_id"], "name": info["name"],
              "agent_pid": os.getpid(), "agent_start": process_start_time(os.getpid()),
              "pid": os.getpid(), "cwd": str(repo), "repo_id": info["repo"]}  # fmt: skip
    path.write_text(json.dumps(record))
    yield peer
    path.unlink(missing_ok=True)


def hook(client: str, body: dict[str, Any], env: dict[str, str], *flags: str) -> Any:
    return run_hook(["agent-hook", client, *flags], body, env, cwd=None)[1]


# ---- Cursor: preToolUse and afterFileEdit, as its docs give them -----------------------
def cursor(event: str, repo: Path, **fields: Any) -> dict[str, Any]:
    return {
        "conversation_id": "c-1",
        "generation_id": "g-1",
        "hook_event_name": event,
        "workspace_roots": [str(repo)],
        **fields,
    }


def test_cursor_asks_the_user_about_a_file_another_peer_claims(
    repo: Path, env: dict[str, str], bob: Client
) -> None:
    body = cursor("preToolUse", repo, tool_name="Write",
                  tool_input={"file_path": "db/schema.sql", "content": "x"})  # fmt: skip
    answer = hook("cursor", body, env)
    assert answer["permission"] == "ask"
    assert "db/schema.sql is claimed by bob" in answer["agent_message"]
    assert REASON in answer["user_message"]


def test_cursor_denies_in_block_mode(repo: Path, env: dict[str, str], bob: Client) -> None:
    git(repo, "config", "lockd.hookMode", "block")
    body = cursor("preToolUse", repo, tool_name="Edit",
                  tool_input={"file_path": str(repo / "db/schema.sql")})  # fmt: skip
    answer = hook("cursor", body, env)
    assert answer["permission"] == "deny" and REASON in answer["agent_message"]


def test_cursor_allows_unclaimed_and_claims_after_the_edit(
    repo: Path, env: dict[str, str], session: Client, broker: Broker
) -> None:
    body = cursor("preToolUse", repo, tool_name="Write", tool_input={"file_path": "app.py"})
    assert hook("cursor", body, env) == {"permission": "allow"}
    edit = cursor("afterFileEdit", repo, file_path=str(repo / "app.py"),
                  edits=[{"old_string": "a", "new_string": "b"}])  # fmt: skip
    assert hook("cursor", edit, env, "--auto-claim") is None
    assert locks_of(broker, repo, session) == ["/app.py"]
    # Its own claim never stops it.
    git(repo, "config", "lockd.hookMode", "block")
    assert hook("cursor", body, env) == {"permission": "allow"}


# ---- Codex: native apply_patch, and the shell's heredoc -------------------------------
PATCH = "*** Begin Patch\n*** Update File: app.py\n*** Update File: db/schema.sql\n*** End Patch\n"


@pytest.mark.parametrize(
    ("tool", "tool_input"),
    [
        ("apply_patch", {"command": PATCH}),
        ("apply_patch", {"input": PATCH}),
        ("Bash", {"command": f"apply_patch <<'EOF'\n{PATCH}EOF\n"}),
    ],
)
def test_codex_denies_a_patch_touching_a_claimed_file(
    repo: Path, env: dict[str, str], bob: Client, tool: str, tool_input: dict[str, Any]
) -> None:
    git(repo, "config", "lockd.hookMode", "block")
    body = {"session_id": "s", "cwd": str(repo), "hook_event_name": "PreToolUse",
            "tool_name": tool, "tool_input": tool_input}  # fmt: skip
    out = hook("codex", body, env)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny"
    assert "db/schema.sql is claimed by bob" in out["permissionDecisionReason"]


def test_codex_says_nothing_about_other_shell_commands(
    repo: Path, env: dict[str, str], bob: Client
) -> None:
    body = {"cwd": str(repo), "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_input": {"command": "cat db/schema.sql"}}  # fmt: skip
    assert hook("codex", body, env) is None


# ---- Gemini CLI: BeforeTool denies, AfterTool tells ----------------------------------
def test_gemini_denies_in_block_mode_and_warns_after_otherwise(
    repo: Path, env: dict[str, str], bob: Client
) -> None:
    target = {"file_path": str(repo / "db/schema.sql")}
    body = {"session_id": "s", "cwd": str(repo), "hook_event_name": "BeforeTool",
            "tool_name": "replace", "tool_input": target}  # fmt: skip
    assert hook("gemini", body, env) is None  # warn mode: BeforeTool cannot tell the model
    after = hook("gemini", {**body, "hook_event_name": "AfterTool"}, env)
    assert "claimed by bob" in after["hookSpecificOutput"]["additionalContext"]
    git(repo, "config", "lockd.hookMode", "block")
    denied = hook("gemini", body, env)
    assert denied["decision"] == "deny" and REASON in denied["reason"]


def test_bad_input_never_gets_in_the_way(env: dict[str, str]) -> None:
    for client in ("codex", "gemini", "cursor"):
        proc = subprocess.run(
            [PY, "-m", "lockd", "agent-hook", client], input="[1, 2]", env=env,
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert proc.returncode == 0 and proc.stdout == "" and "not the hook's JSON" in proc.stderr
    proc = subprocess.run([PY, "-m", "lockd", "agent-hook", "vim"], input="{}", env=env,
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert proc.returncode == 2 and "unknown client 'vim'" in proc.stderr
