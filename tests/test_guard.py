"""`lockd guard --hook` fed the JSON Claude Code sends its PreToolUse and
PostToolUse hooks, against a real broker: the warning has to arrive before
the edit, in the shape Claude Code reads, and never get in the way otherwise."""

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
from lockd.testing import Broker, free_port
from tests.gitutil import add_worktree, git
from tests.hookcli import run_hook

PY = sys.executable
REASON = "migrating the schema"
SESSION_ID = "9b2f0d4e-5c1a-4f7e-8a33-0c2d1e6f7a10"
SHARED_BROKER = True  # `broker` is the module's one (see conftest): each test has its own repo
REPO_FILES = {
    "db/schema.sql": "s\n",
    "db/notes.ipynb": "{}\n",
    "app.py": "a\n",
    "data[1].py": "d\n",
}


def tool_input(tool: str, path: str) -> dict[str, Any]:
    """What each editing tool really sends (Claude Code's tool schemas)."""
    if tool == "Edit":
        return {"file_path": path, "old_string": "a", "new_string": "b", "replace_all": False}
    if tool == "Write":
        return {"file_path": path, "content": "print('hi')\n"}
    if tool == "MultiEdit":
        return {"file_path": path, "edits": [{"old_string": "a", "new_string": "b"}]}
    if tool == "NotebookEdit":
        return {
            "notebook_path": path,
            "cell_id": "c1",
            "new_source": "x = 1",
            "edit_mode": "replace",
        }
    return {"command": f"cat {path}", "description": "look"}


def payload(
    tool: str, path: str, cwd: Path, event: str = "PreToolUse", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": SESSION_ID,
        "transcript_path": f"/home/dev/.claude/projects/-proj/{SESSION_ID}.jsonl",
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": event,
        "tool_name": tool,
        "tool_input": tool_input(tool, path),
        "tool_use_id": "toolu_01ABCDEF",
    }
    if event == "PostToolUse":
        body["tool_response"] = {"filePath": path, "success": True}
    body.update(extra)
    return body


def guard(
    body: dict[str, Any] | str, env: dict[str, str], *flags: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """Run the hook as Claude Code does: JSON on stdin, answer on stdout."""
    return run_hook(["guard", "--hook", *flags], body, env)


def register(broker: Broker, repo: Path, name: str) -> Client:
    return broker.register(cwd=str(repo), repo_id=identify(str(repo)).repo_id, name=name)


@pytest.fixture
def bob(broker: Broker, repo: Path) -> Client:
    peer = register(broker, repo, "bob")
    got = peer.call(Api.announce(identify(str(repo)).repo_id, ["db/"], REASON))
    assert got["granted"], got
    return peer


@pytest.fixture
def session(broker: Broker, repo: Path) -> Iterator[Client]:
    """An agent session whose agent process is this test process, as the
    MCP server records it: the guard finds it by walking up its ancestors."""
    peer = register(broker, repo, "agent")
    info: dict[str, Any] = peer.peer  # type: ignore[attr-defined]
    folder = broker.home / "sessions"
    folder.mkdir(exist_ok=True)
    path = folder / "guard-test.json"
    path.write_text(
        json.dumps(
            {
                "credential": peer.credential,
                "peer_id": info["peer_id"],
                "name": info["name"],
                "agent_pid": os.getpid(),
                "agent_start": process_start_time(os.getpid()),
                "pid": os.getpid(),
                "cwd": str(repo),
                "repo_id": info["repo"],
            }
        )
    )
    yield peer
    path.unlink(missing_ok=True)


def locks_of(broker: Broker, repo: Path, peer: Client) -> list[str]:
    repo_id = identify(str(repo)).repo_id
    pid = peer.peer["peer_id"]  # type: ignore[attr-defined]
    return [lk["pattern"] for lk in broker.client().call(Api.locks(repo_id))["locks"]
            if lk["peer_id"] == pid]  # fmt: skip


# ---- warn, deny, silence --------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "target"),
    [
        ("Edit", "db/schema.sql"),
        ("Write", "db/new/table.sql"),  # a file (and folder) that does not exist yet
        ("MultiEdit", "db/schema.sql"),
        ("NotebookEdit", "db/notes.ipynb"),
    ],
)
def test_a_file_claimed_by_another_gets_context(
    repo: Path, env: dict[str, str], bob: Client, tool: str, target: str
) -> None:
    proc, answer = guard(payload(tool, str(repo / target), repo), env)
    assert answer is not None, proc.stderr
    out = answer["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse"
    assert "permissionDecision" not in out  # warn mode: the edit goes ahead
    text = out["additionalContext"]
    bob_id = bob.peer["peer_id"]  # type: ignore[attr-defined]
    for part in (target, "bob", bob_id, REASON, "db/", "send_message", "notify_when_free"):
        assert part in text, (part, text)


@pytest.mark.parametrize("how", ["git-config", "env"])
def test_block_mode_denies_in_claude_codes_shape(
    repo: Path, env: dict[str, str], bob: Client, how: str
) -> None:
    if how == "git-config":
        git(repo, "config", "lockd.hookMode", "block")
    else:
        env = {**env, "LOCKD_HOOK_MODE": "block"}
    _, answer = guard(payload("Edit", str(repo / "db/schema.sql"), repo), env)
    assert answer is not None
    assert set(answer) == {"hookSpecificOutput"}
    out = answer["hookSpecificOutput"]
    assert set(out) == {"hookEventName", "permissionDecision", "permissionDecisionReason"}
    assert out["hookEventName"] == "PreToolUse" and out["permissionDecision"] == "deny"
    assert "bob" in out["permissionDecisionReason"] and REASON in out["permissionDecisionReason"]


def test_block_mode_only_warns_about_a_shared_claim(
    broker: Broker, repo: Path, env: dict[str, str]
) -> None:
    reader = register(broker, repo, "reader")
    reader.call(Api.announce(identify(str(repo)).repo_id, ["app.py"], "reading", mode="shared"))
    _, answer = guard(
        payload("Edit", str(repo / "app.py"), repo), {**env, "LOCKD_HOOK_MODE": "block"}
    )
    assert answer is not None
    out = answer["hookSpecificOutput"]
    assert "permissionDecision" not in out and "reader" in out["additionalContext"]


def test_relative_paths_and_worktrees(
    repo: Path, env: dict[str, str], bob: Client, tmp_path: Path
) -> None:
    """A path relative to the payload's cwd, and the same file seen from a
    linked worktree: both are the claimed file of the one repo."""
    _, answer = guard(payload("Edit", "schema.sql", repo / "db"), env)
    assert answer and "bob" in answer["hookSpecificOutput"]["additionalContext"]
    wt = add_worktree(repo, tmp_path / "wt", "feature")
    _, answer = guard(payload("Edit", str(wt / "db" / "schema.sql"), wt), env)
    assert answer and "bob" in answer["hookSpecificOutput"]["additionalContext"]


@pytest.mark.parametrize(
    ("tool", "target"),
    [
        ("Edit", "app.py"),  # nobody claims it
        ("Read", "db/schema.sql"),  # not an editing tool
        ("Bash", "db/schema.sql"),
    ],
)
def test_silence_when_there_is_nothing_to_say(
    repo: Path, env: dict[str, str], bob: Client, tool: str, target: str
) -> None:
    proc, answer = guard(payload(tool, str(repo / target), repo), env)
    assert answer is None and proc.stdout == "" and proc.stderr == ""


def test_a_file_outside_any_claim_scope_is_silent(
    repo: Path, env: dict[str, str], bob: Client, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "scratch" / "notes.txt"
    proc, answer = guard(payload("Write", str(elsewhere), repo), env)
    assert answer is None and proc.stdout == ""


def test_own_claim_is_no_warning(
    repo: Path, env: dict[str, str], bob: Client, session: Client
) -> None:
    """Found by LOCKD_PEER, or by the agent session above the hook."""
    target = str(repo / "db/schema.sql")
    me = bob.peer["name"]  # type: ignore[attr-defined]
    _, answer = guard(payload("Edit", target, repo), {**env, "LOCKD_PEER": me})
    assert answer is None
    repo_id = identify(str(repo)).repo_id
    session.call(Api.announce(repo_id, ["app.py"], "mine"))
    _, answer = guard(payload("Edit", str(repo / "app.py"), repo), env)
    assert answer is None
    # The same session still hears about bob's claim.
    _, answer = guard(payload("Edit", target, repo), env)
    assert answer and "bob" in answer["hookSpecificOutput"]["additionalContext"]


# ---- auto-claim --------------------------------------------------------------------


def test_auto_claim_announces_an_unclaimed_edited_file(
    broker: Broker, repo: Path, env: dict[str, str], session: Client
) -> None:
    body = payload("Edit", str(repo / "app.py"), repo, event="PostToolUse")
    _, answer = guard(body, env, "--auto-claim")
    assert answer is not None
    out = answer["hookSpecificOutput"]
    assert out["hookEventName"] == "PostToolUse" and "claimed app.py" in out["additionalContext"]
    assert locks_of(broker, repo, session) == ["/app.py"]
    _, again = guard(body, env, "--auto-claim")  # already the session's: nothing more
    assert again is None and locks_of(broker, repo, session) == ["/app.py"]


def test_auto_claim_names_exactly_the_file(
    broker: Broker, repo: Path, env: dict[str, str], session: Client
) -> None:
    """`data[1].py` must not become a class pattern claiming `data1.py`."""
    body = payload("Write", str(repo / "data[1].py"), repo, event="PostToolUse")
    _, answer = guard(body, env, "--auto-claim")
    assert answer is not None
    repo_id = identify(str(repo)).repo_id
    check = broker.client().call(Api.check(repo_id, ["data[1].py", "data1.py"]))["paths"]
    assert [len(p["claims"]) for p in check] == [1, 0]


def test_auto_claim_leaves_others_claims_alone(
    broker: Broker, repo: Path, env: dict[str, str], bob: Client, session: Client
) -> None:
    body = payload("Edit", str(repo / "db/schema.sql"), repo, event="PostToolUse")
    _, answer = guard(body, env, "--auto-claim")
    assert answer and "bob" in answer["hookSpecificOutput"]["additionalContext"]
    assert locks_of(broker, repo, session) == []


def test_auto_claim_without_a_session_claims_nothing(
    broker: Broker, repo: Path, env: dict[str, str]
) -> None:
    """A person's shell or an unknown process has no session to claim for."""
    body = payload("Edit", str(repo / "app.py"), repo, event="PostToolUse")
    _, answer = guard(body, env, "--auto-claim")
    assert answer is None
    locks = broker.client().call(Api.locks(identify(str(repo)).repo_id))["locks"]
    assert locks == []


# ---- never in the way ----------------------------------------------------------------


def test_broker_down_is_a_line_on_stderr_and_no_answer(repo: Path, env: dict[str, str]) -> None:
    down = {**env, "LOCKD_PORT": str(free_port())}
    proc, answer = guard(payload("Edit", str(repo / "db/schema.sql"), repo), down)
    assert answer is None
    assert len(proc.stderr.strip().splitlines()) == 1 and "not reachable" in proc.stderr


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[]",
        "3",
        '{"tool_name": "Edit"}',
        '{"tool_name": "Edit", "tool_input": "x"}',
    ],
)
def test_odd_stdin_is_not_an_error(env: dict[str, str], raw: str) -> None:
    proc, answer = guard(raw, env)
    assert answer is None
