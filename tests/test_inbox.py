"""`lockd inbox --hook`, as Claude Code runs it on UserPromptSubmit and
PostToolUse: the session's unread messages go into the agent's context once,
marked when they were already pushed, and nothing is ever in the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.testing import Broker, free_port

PAYLOAD = json.dumps(
    {
        "session_id": "s1",
        "transcript_path": "/dev/null",
        "cwd": "/tmp",
        "hook_event_name": "UserPromptSubmit",
        "prompt": "go on",
    }
)


def run_inbox_hook(env: dict[str, str], stdin: str = PAYLOAD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockd", "inbox", "--hook"],
        input=stdin,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=20,
    )


def agent_session(broker: Broker, name: str) -> Client:
    """A registered session whose agent is this test process: the hook's ancestor."""
    me = psutil.Process()
    client = broker.register(name=name)
    peer = client.peer  # type: ignore[attr-defined]
    folder = broker.home / "sessions"
    folder.mkdir(exist_ok=True)
    data = {**peer, "agent_pid": me.pid, "agent_start": me.create_time()}
    (folder / f"{name}.json").write_text(json.dumps(data))
    return client


def test_unread_messages_reach_the_context_once(broker: Broker) -> None:
    agent = agent_session(broker, "agent")
    bob = broker.register(name="bob")
    first = bob.call(Api.send("agent", "please release src/api"))
    second = bob.call(Api.send("agent", "thanks"))
    agent.call(Api.ack([first["message_id"]]))  # shown as a channel message already
    proc = run_inbox_hook(broker.env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "UserPromptSubmit"
    text = out["additionalContext"]
    assert "2 unread" in text and "bob" in text
    assert "please release src/api" in text and "thanks" in text
    assert first["message_id"] in text and second["message_id"] in text
    pushed = [line for line in text.splitlines() if "also pushed as <channel" in line]
    assert len(pushed) == 1 and first["message_id"] in pushed[0]
    again = run_inbox_hook(broker.env)  # marked read: nothing twice
    assert again.returncode == 0 and again.stdout == ""
    assert agent.call(Api.inbox())["messages"] == []


def test_post_tool_use_event_name_is_echoed(broker: Broker) -> None:
    agent_session(broker, "agent")
    broker.register(name="bob").call(Api.send("agent", "hi"))
    payload = json.dumps({"hook_event_name": "PostToolUse", "tool_name": "Edit"})
    out = json.loads(run_inbox_hook(broker.env, payload).stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "PostToolUse" and "hi" in out["additionalContext"]


def test_silent_without_a_session_a_broker_or_valid_input(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"LOCKD_HOME": str(home), "LOCKD_PORT": str(free_port())}
    for stdin in (PAYLOAD, "not json", ""):
        proc = run_inbox_hook(env, stdin)
        assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    # A session file, but no broker behind it: still silent, still 0.
    (home / "sessions").mkdir(exist_ok=True)
    me = psutil.Process()
    (home / "sessions" / "x.json").write_text(
        json.dumps(
            {
                "peer_id": "p-x",
                "credential": "c",
                "agent_pid": me.pid,
                "agent_start": me.create_time(),
            }
        )  # fmt: skip
    )
    proc = run_inbox_hook(env)
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
