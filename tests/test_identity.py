"""Who is this process? The /proc walk must agree with psutil, and finding
the committer must not load psutil on Linux (the hook's time budget)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from lockd.client.api import Api
from lockd.local import processes
from lockd.local.sessions import _proc_ancestors
from lockd.testing import Broker


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="Linux /proc only")
def test_proc_ancestor_walk_agrees_with_psutil() -> None:
    """Same pids, same start times (within psutil's own rounding)."""
    ours, theirs = _proc_ancestors(os.getpid()), processes.ancestors(os.getpid())
    assert ours is not None and [p for p, _ in ours] == [p for p, _ in theirs]
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        assert b is not None and abs(a - b) < 0.02


def _who(lockd_home: Path) -> dict[str, object]:
    code = (
        "import json, sys; from lockd.local.sessions import session_of_ancestors as s;"
        "found = s(); print(json.dumps({'found': found and found['peer_id'],"
        " 'psutil': 'psutil' in sys.modules}))"
    )
    env = {**os.environ, "LOCKD_HOME": str(lockd_home)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _session(lockd_home: Path, name: str, pid: int, start: float | None) -> None:
    folder = lockd_home / "sessions"
    folder.mkdir(exist_ok=True)
    data = {"peer_id": name, "credential": "c", "agent_pid": pid, "agent_start": start}
    (folder / f"{name}.json").write_text(json.dumps(data))


def test_a_session_above_us_is_found_and_others_cost_nothing(lockd_home: Path) -> None:
    me = psutil.Process()
    # A live process that is not our ancestor: it just stays alive (killed below).
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        born = psutil.Process(stranger.pid).create_time()
        _session(lockd_home, "p-elsewhere", stranger.pid, born)
        assert _who(lockd_home) == {"found": None, "psutil": False}
        # This test process is the child's parent: a session whose agent it is.
        _session(lockd_home, "p-reused", me.pid, me.create_time() - 100)  # pid reused
        assert _who(lockd_home)["found"] is None
        _session(lockd_home, "p-mine", me.pid, me.create_time())
        linux = os.path.exists("/proc/self/stat")
        assert _who(lockd_home) == {"found": "p-mine", "psutil": not linux}
    finally:
        stranger.kill()
        stranger.wait()


async def test_a_resumed_client_session_is_the_same_peer_with_its_inbox(
    broker: Broker, tmp_path: Path
) -> None:
    """Claude Code hands lockd-mcp CLAUDE_CODE_SESSION_ID, unchanged by
    `claude --resume`: the restarted server (another agent process) gets its
    peer id and the message sent while it was away; the inbox hook finds it by
    the payload's session_id, from a process that is not the agent's descendant."""
    from tests.gitutil import make_repo
    from tests.mcputil import mcp_session

    repo = make_repo(tmp_path / "proj", {"a.py": "a\n"})
    env = {**os.environ, **broker.env, "CLAUDE_CODE_SESSION_ID": "3f7c-resume-me"}
    env.pop("LOCKD_SESSION_KEY", None)
    async with mcp_session(str(repo), env, own_agent=True) as first:
        me = await first.call("whoami")
    sender = broker.register(name="sender")
    sender.call(Api.send(me["peer_id"], "while you were away"))
    async with mcp_session(str(repo), env, own_agent=True) as again:
        assert (await again.call("whoami"))["peer_id"] == me["peer_id"]
        payload = json.dumps({"session_id": "3f7c-resume-me", "hook_event_name": "Stop"})
        hook = subprocess.run(
            [sys.executable, "-m", "lockd", "inbox", "--hook"], input=payload,
            env={**os.environ, **broker.env}, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        context = json.loads(hook.stdout)["hookSpecificOutput"]["additionalContext"]
        assert "while you were away" in context
    other = {**env, "CLAUDE_CODE_SESSION_ID": "another-session"}
    async with mcp_session(str(repo), other, own_agent=True) as stranger:
        assert (await stranger.call("whoami"))["peer_id"] != me["peer_id"]
