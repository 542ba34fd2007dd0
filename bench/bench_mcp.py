"""End-to-end MCP benchmark (issue 4): session A's `send_message` tool call
to session B's `notifications/claude/channel`, through two real `lockd-mcp`
processes over stdio and a real broker, as Claude Code would see it. Then an
idle check: the broker's request counter over a quiet stretch shows that an
idle session sends nothing but heartbeats.

The reference is claude-peers-mcp's 1-second polling, measured on this kind
of machine at p50 528 ms, p99 997 ms.

Run: .venv/bin/python bench/bench_mcp.py [--messages 150] [--idle 30]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Rows, broker, pct, run_alone, summary  # noqa: E402
from lockd.client.api import Api  # noqa: E402
from lockd.local import config  # noqa: E402
from lockd.testing import Broker  # noqa: E402
from tests.mcputil import mcp_session  # noqa: E402

POLLING_P50, POLLING_P99 = 528.0, 997.0


async def latency(b: Broker, n: int, cwd: str) -> list[float]:
    env = {**os.environ, **b.env}
    async with mcp_session(cwd, env, "bench-a") as a, mcp_session(cwd, env, "bench-b") as bb:
        target = (await bb.call("whoami"))["peer_id"]
        out = []
        for i in range(n + 5):
            before = len(bb.sink.received)
            t0 = time.perf_counter()
            await a.call("send_message", to=target, message=f"m{i}")
            while len(bb.sink.received) == before:
                await asyncio.sleep(0.0002)
            if i >= 5:  # the first few warm up both processes
                out.append((bb.sink.received[-1][0] - t0) * 1000)
        return out


async def idle_requests(b: Broker, seconds: float, cwd: str) -> tuple[int, float]:
    env = {**os.environ, **b.env}
    client = b.client()
    async with mcp_session(cwd, env, "idle-a"), mcp_session(cwd, env, "idle-b"):
        await asyncio.sleep(2)  # registration and stream set-up are not idle
        before = client.call(Api.status())["requests"]
        await asyncio.sleep(seconds)
        after = client.call(Api.status())["requests"]
    expected = 2 * seconds / config.HEARTBEAT_SECONDS
    return after - before - 1, expected  # minus the first status call itself


def run(messages: int = 150, idle: float = 30.0) -> Rows:
    with tempfile.TemporaryDirectory(prefix="lockd-mcp-bench-") as cwd, broker() as b:
        lat = asyncio.run(latency(b, messages, cwd))
        quiet, expected = asyncio.run(idle_requests(b, idle, cwd))
    p50, p99 = statistics.median(lat), pct(lat, 99)
    return [
        (
            f"send_message → channel notification ({messages} msgs)",
            summary(lat),
            "p50 ≤ 5 ms, p99 ≤ 25 ms",
        ),
        (
            "vs 1-second polling (claude-peers: p50 528 ms, p99 997 ms)",
            f"{POLLING_P50 / p50:,.0f}× faster at p50, {POLLING_P99 / p99:,.0f}× at p99",
            "—",
        ),
        (
            f"requests from 2 idle sessions in {idle:.0f} s",
            f"{quiet} (heartbeats every {config.HEARTBEAT_SECONDS:.0f} s: ≈{expected:.0f})",
            "heartbeats only",
        ),
    ]


if __name__ == "__main__":
    run_alone("MCP end to end", run)
