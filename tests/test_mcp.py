"""`lockd-mcp` as agents meet it: real stdio sessions driven by the `mcp`
package's client (legacy handshake, as Claude Code), against a real broker."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import psutil
import pytest

from lockd.client.api import Api
from lockd.testing import Broker, free_port
from tests.gitutil import add_worktree
from tests.mcputil import TOOLS, mcp_session
from tests.polling import until

REPO_FILES = {
    "src/api/app.py": "x\n",
    "src/api/db.py": "y\n",
    "docs/a.md": "d\n",
    "README.md": "r\n",
}


async def test_tools_schemas_and_channel_capability(repo: Path, env: dict[str, str]) -> None:
    async with mcp_session(str(repo), env, "a") as s:
        tools = (await s.client.list_tools()).tools
        assert {t.name for t in tools} == TOOLS
        for tool in tools:
            assert tool.output_schema is not None, tool.name
            assert tool.description and len(tool.description) > 40, tool.name
        caps = s.client.server_capabilities
        assert caps.experimental and "claude/channel" in caps.experimental
        me = await s.call("whoami")
        assert me["peer_id"].startswith("p-") and me["cwd"] == str(repo)
        result = await s.client.call_tool("whoami", {})
        assert result.content and me["peer_id"] in result.content[0].text  # text too


async def test_repo_scope_across_worktree_and_pushed_messages(
    repo: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature")
    async with mcp_session(str(repo), env, "a") as a, mcp_session(str(wt), env, "b") as b:
        me_a, me_b = await a.call("whoami"), await b.call("whoami")
        assert me_a["repo"] == me_b["repo"]
        peers = (await a.call("list_peers", scope="repo"))["peers"]
        assert [p["peer_id"] for p in peers] == [me_b["peer_id"]]
        assert (await a.call("list_peers", scope="directory"))["peers"] == []
        await a.call("set_summary", summary="refactoring the API")
        sent = await a.call("send_message", to=me_b["name"], message="hello from a")
        assert sent["recipients"] == [me_b["peer_id"]]
        await until(lambda: len(b.channel) == 1)
        note = b.channel[0]
        assert note.content == "hello from a"
        assert note.meta["from_id"] == me_a["peer_id"]
        assert note.meta["from_name"] == me_a["name"]
        assert note.meta["message_id"] == sent["message_id"]
        assert note.meta["from_summary"] == "refactoring the API"
        assert all(k.isidentifier() for k in note.meta)
        # Never twice: a second message pushed behind it arrives, and the first is still once.
        after = await a.call("send_message", to=me_b["name"], message="sentinel")
        await until(lambda: any(n.content == "sentinel" for n in b.channel))
        assert [n.content for n in b.channel] == ["hello from a", "sentinel"]
        inbox = (await b.call("check_messages"))["messages"]
        assert [m["message_id"] for m in inbox] == [sent["message_id"], after["message_id"]]
        assert inbox[0]["pushed"] is True  # acknowledged before the stream went on to the next
        assert (await b.call("check_messages"))["messages"] == []
        await b.call("send_message", to="@repo", message="broadcast")
        await until(lambda: any(n.content == "broadcast" for n in a.channel))


async def test_unread_count_rides_on_every_result(repo: Path, env: dict[str, str]) -> None:
    async with mcp_session(str(repo), env, "a") as a, mcp_session(str(repo), env, "b") as b:
        me_b = await b.call("whoami")
        await a.call("send_message", to=me_b["peer_id"], message="one")
        await until(lambda: len(b.channel) == 1)
        assert (await b.call("list_locks"))["unread"] == 1
        await b.call("check_messages")
        assert (await b.call("list_locks"))["unread"] == 0


async def test_claims_conflict_between_sessions(repo: Path, env: dict[str, str]) -> None:
    async with mcp_session(str(repo), env, "a") as a, mcp_session(str(repo), env, "b") as b:
        got = await a.call("announce_intent", patterns=["src/api"], reason="rewrite the API")
        assert got["granted"] and got["intents"][0]["pattern"] == "/src/api/"
        refused = await b.call(
            "announce_intent", patterns=["src/**/*.py"], reason="lint", notify_when_free=True
        )
        assert not refused["granted"]
        (c,) = refused["conflicts"]
        assert c["pattern"] == "/src/api/" and c["reason"] == "rewrite the API"
        assert sorted(c["paths"]) == ["src/api/app.py", "src/api/db.py"]
        await until(lambda: any("wanted files you claim" in n.content for n in a.channel))
        check = await b.call("check_paths", paths=["src/api/app.py", "docs/a.md"])
        assert [len(p["claims"]) for p in check["paths"]] == [1, 0]
        assert check["paths"][0]["claims"][0]["mine"] is False
        locks = await a.call("list_locks", path="src/api/db.py")
        assert [lk["mine"] for lk in locks["locks"]] == [True]
        released = await a.call("release_intent")
        assert released["released"] == [got["intents"][0]["intent_id"]]
        await until(lambda: any("free now" in n.content for n in b.channel))
        assert (await b.call("announce_intent", patterns=["src/**/*.py"], reason="lint"))["granted"]


@pytest.mark.parametrize(
    ("tool", "args", "needle"),
    [
        ("announce_intent", {"patterns": ["!src"], "reason": "x"}, "negation"),
        ("announce_intent", {"patterns": ["../etc/passwd"], "reason": "x"}, "leaves the repo"),
        ("announce_intent", {"patterns": [""], "reason": "x"}, "empty pattern"),
        ("announce_intent", {"patterns": ["a"] * 101, "reason": "x"}, "limit is 100"),
        ("announce_intent", {"patterns": ["x" * 600], "reason": "x"}, "limit is 512"),
        ("announce_intent", {"patterns": ["src/"], "reason": " "}, "reason is empty"),
        ("announce_intent", {"patterns": ["src/"], "reason": "x", "mode": "mine"}, "mode"),
        ("announce_intent", {"patterns": ["src/"], "reason": "x", "ttl_seconds": -5}, "ttl"),
        ("send_message", {"to": "nobody-here", "message": "hi"}, "see list_peers for who is"),
        ("send_message", {"to": "@everyone", "message": "hi"}, "broadcasts"),
        ("list_peers", {"scope": "galaxy"}, "scope"),
        ("release_intent", {"intent_ids": ["i999999"]}, "see list_locks for current ids"),
        ("check_paths", {"paths": ["/etc/passwd"]}, "outside the checkout"),
        ("set_summary", {"summary": "s" * 1001}, "at most 1000"),
        ("list_locks", {"path": "/elsewhere/x.py"}, "outside the checkout"),
    ],
)
async def test_bad_input_is_a_tool_error(
    repo: Path, env: dict[str, str], tool: str, args: dict, needle: str
) -> None:
    async with mcp_session(str(repo), env, "a") as a:
        text = await a.fail(tool, **args)
        assert needle in text
        assert (await a.call("list_locks"))["locks"] == []


@pytest.mark.parametrize(
    ("tool", "args", "said"),
    [
        ("announce_intent", {"patterns": ["src/"], "reason": "x", "notify_when_free": "yes"},
         'argument notify_when_free is "yes": pass true or false'),
        ("announce_intent", {"patterns": ["src/"], "reason": "x", "notify_when_free": 1},
         "argument notify_when_free is 1: pass true or false"),
        ("announce_intent", {"patterns": "src/", "reason": "x"},
         'argument patterns is "src/": pass a list of strings'),
        ("announce_intent", {"patterns": ["src/", 5], "reason": "x"},
         "argument patterns[1] is 5: pass a string"),
        ("announce_intent", {"patterns": ["src/"], "reason": "x", "ttl_seconds": "1h"},
         'argument ttl_seconds is "1h": pass a number or null (or leave it out)'),
        ("announce_intent", {"patterns": ["src/"]}, "argument reason is missing: pass a string"),
        ("announce_intent", {"patterns": ["src/"], "reason": "x", "mode": "mine"},
         'argument mode is "mine": pass one of "exclusive", "shared"'),
        ("announce_intent", {"patterns": ["src/"], "reason": "x", "force": True},
         "unknown argument force (= true): announce_intent takes patterns, reason, mode, "
         "ttl_seconds, notify_when_free"),
        ("list_peers", {"scope": "galaxy"},
         'argument scope is "galaxy": pass one of "repo", "directory", "machine"'),
        ("whoami", {"verbose": True},
         "unknown argument verbose (= true): whoami takes no arguments"),
        ("send_message", {"to": 7, "message": "hi"}, "argument to is 7: pass a string"),
    ],
)  # fmt: skip
async def test_wrong_arguments_are_named_with_what_to_pass(
    repo: Path, env: dict[str, str], tool: str, args: dict, said: str
) -> None:
    """A wrong type, a missing or an unknown argument: the tool error names the argument, the
    value sent and what to pass, in one line without pydantic's dump; nothing is claimed."""
    async with mcp_session(str(repo), env, "a") as a:
        text = await a.fail(tool, **args)
        assert text == f"{tool}: {said}"
        assert "pydantic" not in text and "\n" not in text
        assert (await a.call("list_locks"))["locks"] == []


async def test_tool_schemas_are_closed(repo: Path, env: dict[str, str]) -> None:
    """Every tool's input schema says what it refuses: no arguments beyond its own."""
    async with mcp_session(str(repo), env, "a") as a:
        for tool in (await a.client.list_tools()).tools:
            assert tool.input_schema.get("additionalProperties") is False, tool.name
        # What strictness leaves alone: a whole number where a number goes.
        got = await a.call("announce_intent", patterns=["docs/"], reason="x", ttl_seconds=60)
        assert got["granted"]


def _mcp_children() -> list[psutil.Process]:
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if "mcp_tools" in " ".join(p.cmdline())]


async def test_killed_session_keeps_identity_and_inbox(repo: Path, env: dict[str, str]) -> None:
    async with mcp_session(str(repo), env, "sender") as sender:
        async with mcp_session(str(repo), env, "victim") as victim:
            me = await victim.call("whoami")
            await victim.call("announce_intent", patterns=["docs/"], reason="docs")
            (proc,) = [
                p for p in _mcp_children() if p.environ().get("LOCKD_SESSION_KEY") == "victim"
            ]
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)

            # Its claims go within 2 s: the broker sees the stream close and the process gone.
            async def no_locks() -> bool:
                return (await sender.call("list_locks"))["locks"] == []

            await until(no_locks, step=0.05)
            await sender.call("send_message", to=me["peer_id"], message="while you were out")
        async with mcp_session(str(repo), env, "victim") as again:
            assert (await again.call("whoami"))["peer_id"] == me["peer_id"]
            await until(lambda: any(n.content == "while you were out" for n in again.channel))


async def test_eight_sessions_starting_at_once_make_one_broker(
    repo: Path, lockd_home: Path
) -> None:

    port = free_port()
    env = {**os.environ, "LOCKD_HOME": str(lockd_home), "LOCKD_PORT": str(port)}

    async def one(i: int) -> str:
        async with mcp_session(str(repo), env, f"s{i}") as s:
            return (await s.call("whoami"))["peer_id"]

    try:
        ids = await asyncio.gather(*(one(i) for i in range(8)))
        assert len(set(ids)) == 8
        brokers = [
            p
            for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and "serve" in p.info["cmdline"] and str(port) in p.info["cmdline"]
        ]
        assert len(brokers) == 1
    finally:
        from lockd.client.api import Api
        from lockd.client.sync import Client

        token = (lockd_home / "token").read_text().strip()
        Client(f"http://127.0.0.1:{port}", token=token).call(Api.shutdown())


INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def _inspector() -> str:
    """The MCP Inspector CLI, installed once from the npm registry into a cache."""
    import shutil
    import subprocess

    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node/npm not installed: the MCP Inspector check needs them")
    import fcntl

    home = Path.home() / ".cache" / "lockd-tests" / "inspector-2.12.0"
    binary = home / "node_modules" / ".bin" / "mcp-inspector"
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".install.lock", "w") as lock:  # parallel test workers install once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return str(binary)
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(home), INSPECTOR],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if proc.returncode != 0 or not binary.exists():
            pytest.skip(f"could not install {INSPECTOR}: {proc.stderr[-300:]}")
        return str(binary)


@pytest.mark.parametrize("strict", [False, True])
def test_mcp_inspector_cli_lists_the_tools(repo: Path, env: dict[str, str], strict: bool) -> None:
    """A third-party client: the official Inspector's CLI (tools/list, --strict)."""
    import json
    import subprocess
    import sys

    server_env = {**env, "LOCKD_SESSION_KEY": f"inspector-{strict}"}
    # The Inspector starts the server with a default environment, not its own: the
    # test's LOCKD_* go through -e, or lockd-mcp would start a broker in the user's home.
    passed = [
        a for k, v in server_env.items() if k.startswith("LOCKD_") for a in ("-e", f"{k}={v}")
    ]
    cmd = [_inspector(), "--cli", *passed, sys.executable, "-m", "mcp_tools"]
    proc = subprocess.run(
        cmd + ["--method", "tools/list"] + (["--strict"] if strict else []),
        cwd=repo,
        env=server_env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    tools = json.loads(proc.stdout)["tools"]
    assert {t["name"] for t in tools} == TOOLS
    assert all(t.get("outputSchema") for t in tools)


async def test_a_session_past_its_lease_is_told_once_in_its_next_result(
    short_lease_broker: Broker, repo: Path
) -> None:
    """Heartbeats every 10 s against a 2 s lease: the broker declares the
    session gone and releases its claim; the next tool result says so, once."""
    broker = short_lease_broker
    async with mcp_session(str(repo), broker.env, "lapse") as s:
        granted = await s.call("announce_intent", patterns=["src/api/"], reason="refactor")
        assert granted["granted"]
        observer = broker.register(name="observer")
        repo_id = (await s.call("whoami"))["repo"]
        await until(lambda: observer.call(Api.locks(repo_id))["locks"] == [], timeout=15)
        told = await s.call("list_peers")
        assert "released its claims" in told["notice"] and "src/api/" in told["notice"]
        assert (await s.call("list_peers")).get("notice") is None


async def test_a_refused_claim_keeps_the_example_path(repo: Path, env: dict[str, str]) -> None:
    """Nothing in the checkout yet under new/: `paths` is empty, and the broker's example
    path says which file both would claim, in the structured result and its text."""
    async with mcp_session(str(repo), env, "a") as a, mcp_session(str(repo), env, "b") as b:
        assert (await a.call("announce_intent", patterns=["new/"], reason="scaffold"))["granted"]
        result = await b.client.call_tool(
            "announce_intent", {"patterns": ["new/*.py"], "reason": "lint"}
        )
        (c,) = (result.structured_content or {})["conflicts"]
        assert c["paths"] == [] and c["example"].startswith("new/"), c
        assert c["example"] in result.content[0].text  # type: ignore[union-attr]
