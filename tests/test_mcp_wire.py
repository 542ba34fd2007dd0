"""lockd-mcp's wire as real clients meet it: which protocol era each client
ends up in (push works only in the handshake era), and a JSON-RPC error for
every malformed frame instead of silence."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp_types.version import LATEST_MODERN_VERSION

from tests.mcputil import TOOLS, mcp_session
from tests.polling import until

REPO_FILES = {"src/a.py": "a\n"}


async def test_discover_first_client_falls_back_to_the_handshake_and_gets_pushes(
    repo: Path, env: dict[str, str]
) -> None:
    """mcp's own client in mode="auto" probes server/discover first, as Claude
    Code 2.1.332 does; lockd-mcp must end up in the legacy era with channels."""
    async with (
        mcp_session(str(repo), env, "auto", mode="auto") as a,
        mcp_session(str(repo), env, "legacy") as b,
    ):
        assert a.client.session.initialize_result is not None  # the handshake ran
        assert not a.client.protocol_version.startswith("2026")
        assert "claude/channel" in (a.client.server_capabilities.experimental or {})
        me = await a.call("whoami")
        assert me["push"] == "channel" and me["push_note"] is None
        await b.call("send_message", to=me["peer_id"], message="pushed?")
        await until(lambda: [p.content for p in a.channel] == ["pushed?"])


async def test_modern_only_client_gets_every_tool_and_is_told_push_is_off(
    repo: Path, env: dict[str, str]
) -> None:
    async with (
        mcp_session(str(repo), env, "modern", mode=LATEST_MODERN_VERSION) as a,
        mcp_session(str(repo), env, "legacy") as b,
    ):
        assert a.client.protocol_version == LATEST_MODERN_VERSION
        assert len((await a.client.list_tools()).tools) == len(TOOLS)
        me = await a.call("whoami")
        assert me["push"] == "off" and "check_messages" in me["push_note"]
        await b.call("send_message", to=me["peer_id"], message="read me")
        peers = await a.call("list_peers")  # any result carries the hint
        assert peers["unread"] == 1
        assert "push is off" in peers["unread_hint"]
        inbox = await a.call("check_messages")
        assert [m["text"] for m in inbox["messages"]] == ["read me"]
        assert inbox["messages"][0]["pushed"] is False
        assert a.channel == []


class RawWire:
    """lockd-mcp driven by hand-written frames, to send what no client would."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def send(self, raw: bytes) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(raw + b"\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        assert line, "lockd-mcp closed its stdout"
        return json.loads(line)

    async def request(self, rid: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        frame = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        return await self.send(json.dumps(frame).encode())


async def handshake(repo: Path, env: dict[str, str], *flags: str, stderr: Any) -> RawWire:
    """`python [flags] -m mcp_tools` past the initialize handshake."""
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *flags, "-m", "mcp_tools", cwd=repo,
        env={**env, "LOCKD_SESSION_KEY": "raw"}, stdin=pipe, stdout=pipe, stderr=stderr,
    )  # fmt: skip
    wire = RawWire(proc)
    hello = {"name": "raw", "version": "0"}
    init = await wire.request(
        0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": hello}
    )
    assert "result" in init, init
    assert proc.stdin
    proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    return wire


@pytest.fixture
async def raw(repo: Path, env: dict[str, str]):  # noqa: ANN201
    wire = await handshake(repo, env, stderr=asyncio.subprocess.PIPE)
    proc = wire.proc
    assert proc.stdin
    yield wire
    proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        # Diagnostics of a failure already found: the pauses give the hung process time
        # to write its stacks (SIGUSR2, SIGUSR1) before it is killed; nothing is asserted on them.
        proc.send_signal(signal.SIGUSR2)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(1)
        proc.kill()
        assert proc.stderr
        stacks = (await proc.stderr.read()).decode(errors="replace")
        raise AssertionError(f"lockd-mcp did not exit when its stdin closed:\n{stacks}") from None


async def test_discover_after_the_handshake_is_not_special(raw: RawWire) -> None:
    reply = await raw.request(1, "server/discover", {})
    assert reply["id"] == 1 and "error" in reply


@pytest.mark.parametrize(
    ("frame", "code", "rid"),
    [
        (b'{"jsonrpc": "2.0", "id": 7, "method": "tools/list"', -32700, None),  # cut short
        (b"\xff\xfe not utf-8", -32700, None),
        (b"[" * 100_000, -32700, None),  # nested past any recursion limit
        (b'"just a string"', -32600, None),
        (b'{"jsonrpc": "1.0", "id": 8, "method": "tools/list"}', -32600, 8),
        (b'{"jsonrpc": "2.0", "id": 9, "method": 12}', -32600, 9),
        (
            b'{"jsonrpc": "2.0", "id": 10, "method": "tools/call", '
            b'"params": {"name": "set_summary", "arguments": {"summary": "\\ud800"}}}',
            -32602,
            10,
        ),
        (b'{"jsonrpc": "2.0", "id": "\\udc00", "method": "tools/list"}', -32600, None),
    ],
)
async def test_every_malformed_frame_gets_the_json_rpc_error(
    raw: RawWire, frame: bytes, code: int, rid: int | None
) -> None:
    reply = await raw.send(frame)
    assert reply["jsonrpc"] == "2.0" and reply["id"] == rid
    assert reply["error"]["code"] == code and reply["error"]["message"]
    after = await raw.request(99, "tools/list", {})  # the session goes on
    assert len(after["result"]["tools"]) == len(TOOLS)


async def test_surrogate_in_tool_arguments_changes_nothing(raw: RawWire) -> None:
    reply = await raw.send(
        b'{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": '
        b'"set_summary", "arguments": {"summary": "ok\\ud83d"}}}'
    )
    assert reply["error"]["code"] == -32602
    assert "params.arguments.summary" in reply["error"]["message"]
    me = await raw.request(4, "tools/call", {"name": "whoami", "arguments": {}})
    assert me["result"]["structuredContent"]["summary"] == ""


# Never needed by a session, and each would cost every session resident memory (README
# "Under the real Claude Code"): rich came with the SDK's logging setup, which main() replaces.
NOT_LOADED = ("rich", "httpx", "git", "fastapi", "aiosqlite", "lockd.server", "lockd.broker",
              "lockd.store", "lockd.cli")  # fmt: skip


async def test_a_session_loads_no_module_it_never_uses(
    repo: Path, env: dict[str, str], tmp_path: Path
) -> None:
    assert importlib.util.find_spec("rich"), "installed with the test extras (import-linter)"
    log = tmp_path / "importtime.txt"
    with log.open("wb") as err:
        wire = await handshake(repo, env, "-X", "importtime", stderr=err)
        me = await wire.request(1, "tools/call", {"name": "whoami", "arguments": {}})
        assert me["result"]["structuredContent"]["peer_id"].startswith("p-")  # registered
        assert wire.proc.stdin
        wire.proc.stdin.close()
        await asyncio.wait_for(wire.proc.wait(), 20)
    loaded = {
        line.split("|")[-1].strip()
        for line in log.read_text().splitlines()
        if line.startswith("import time:")
    }
    assert "mcp_tools.server" in loaded, log.read_text()[:500]
    unused = {m for m in loaded for n in NOT_LOADED if m == n or m.startswith(n + ".")}
    assert not unused, sorted(unused)


async def test_a_forged_request_state_is_refused(raw: RawWire) -> None:
    """lockd's tools never ask for input, so its request-state key is made only
    when a client sends state (mcp_tools.sdk); what it sends is still checked."""
    forged = {"name": "whoami", "arguments": {}, "requestState": "v1." + "A" * 48}
    reply = await raw.request(5, "tools/call", forged)
    assert reply["error"]["code"] == -32602
    assert reply["error"]["message"] == "Invalid or expired requestState"
    me = await raw.request(6, "tools/call", {"name": "whoami", "arguments": {}})
    assert me["result"]["structuredContent"]["peer_id"].startswith("p-")
