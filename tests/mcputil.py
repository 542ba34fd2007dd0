"""Real MCP sessions for tests: `lockd-mcp` over stdio, driven by the `mcp`
package's own client in the handshake Claude Code uses, with an extension
that receives `notifications/claude/channel`."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.extension import ClientExtension, NotificationBinding

from mcp_tools.channel import ChannelParams

# Every tool lockd-mcp offers: the contract's nine and `forecast`.
TOOLS = {
    "list_peers",
    "send_message",
    "set_summary",
    "check_messages",
    "whoami",
    "announce_intent",
    "list_locks",
    "release_intent",
    "check_paths",
    "forecast",
}


class ChannelSink(ClientExtension):
    identifier = "lockd-tests/channel"

    def __init__(self) -> None:
        self.received: list[tuple[float, ChannelParams]] = []

    def notifications(self) -> list[NotificationBinding[Any]]:
        return [
            NotificationBinding(
                method="notifications/claude/channel", params_type=ChannelParams, handler=self._on
            )
        ]

    async def _on(self, params: ChannelParams) -> None:
        self.received.append((time.perf_counter(), params))


@dataclass
class Session:
    client: Client
    sink: ChannelSink
    texts: list[str] = field(default_factory=list)

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, args)
        if result.is_error:
            raise ToolFailed(result.content[0].text if result.content else "")  # type: ignore[union-attr]
        return result.structured_content or {}

    async def fail(self, tool: str, **args: Any) -> str:
        result = await self.client.call_tool(tool, args)
        assert result.is_error, f"{tool}({args}) should fail, got {result.structured_content}"
        return result.content[0].text  # type: ignore[union-attr]

    @property
    def channel(self) -> list[ChannelParams]:
        return [p for _, p in self.sink.received]


class ToolFailed(Exception):
    pass


# A stand-in agent process between the test and lockd-mcp: each session then
# has an agent of its own, as sessions of real clients do.
AGENT = "import subprocess, sys; sys.exit(subprocess.call([sys.executable, '-m', 'mcp_tools']))"


def mcp_params(
    cwd: str, env: dict[str, str], key: str | None = None, own_agent: bool = False
) -> StdioServerParameters:
    env = dict(env)
    if key:
        env["LOCKD_SESSION_KEY"] = key
    args = ["-c", AGENT] if own_agent else ["-m", "mcp_tools"]
    return StdioServerParameters(command=sys.executable, args=args, env=env, cwd=cwd)


@asynccontextmanager
async def mcp_session(
    cwd: str,
    env: dict[str, str],
    key: str | None = None,
    mode: str = "legacy",
    own_agent: bool = False,
) -> AsyncIterator[Session]:
    """mode: "legacy" (the initialize handshake), "auto" (discover first, as Claude
    Code does) or a 2026 protocol version (the modern era, no handshake)."""
    sink = ChannelSink()
    params = mcp_params(cwd, env, key, own_agent)
    async with Client(params, mode=mode, extensions=[sink]) as client:
        yield Session(client, sink)
