"""Broker-level benchmarks (issue 2): send -> stream latency, sustained
throughput with 20 concurrent senders, idle CPU with 20 connected peers.

Run: .venv/bin/python bench/bench_broker.py [--messages 500] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import broker, pct, table  # noqa: E402
from lockd.client import Api, AsyncClient  # noqa: E402
from lockd.testing import Broker  # noqa: E402


async def _peer(b: Broker, name: str) -> AsyncClient:
    api = AsyncClient(b.url, token=b.token)
    peer = await api.call(
        Api.register(
            cwd="/bench", repo_id="dir:/bench", repo_root="/bench", kind="person", name=name
        )
    )
    api.credential = peer["credential"]
    return api


async def latency(b: Broker, n: int) -> list[float]:
    sender, receiver = await _peer(b, "sender"), await _peer(b, "receiver")
    arrived: dict[str, float] = {}
    got = asyncio.Event()

    async def listen() -> None:
        async for event, data in receiver.stream():
            if event == "message":
                arrived[data["text"]] = time.perf_counter()
                got.set()

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)
    samples = []
    for i in range(n):
        got.clear()
        t0 = time.perf_counter()
        await sender.call(Api.send("receiver", f"m{i}"))
        await got.wait()
        samples.append((arrived[f"m{i}"] - t0) * 1000)
    task.cancel()
    return samples


async def throughput(b: Broker, seconds: float, senders: int = 20) -> tuple[float, int]:
    sink = await _peer(b, "sink")
    clients = [await _peer(b, f"s{i}") for i in range(senders)]
    errors = 0
    sent = 0
    stop = time.perf_counter() + seconds

    async def run(c: AsyncClient) -> None:
        nonlocal sent, errors
        while time.perf_counter() < stop:
            try:
                await c.call(Api.send("sink", "x"))
                sent += 1
            except Exception:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(run(c) for c in clients))
    elapsed = time.perf_counter() - t0
    del sink
    return sent / elapsed, errors


async def idle_cpu(b: Broker, peers: int = 20, seconds: float = 10.0) -> float:
    clients = [await _peer(b, f"idle{i}") for i in range(peers)]

    async def hold(c: AsyncClient) -> None:
        async for _ in c.stream():
            pass

    tasks = [asyncio.create_task(hold(c)) for c in clients]
    await asyncio.sleep(1.0)
    proc = psutil.Process(b.proc.pid)  # type: ignore[union-attr]
    before = proc.cpu_times()
    await asyncio.sleep(seconds)
    after = proc.cpu_times()
    for t in tasks:
        t.cancel()
    used = (after.user + after.system) - (before.user + before.system)
    return used / seconds * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with broker() as b:
        lat = asyncio.run(latency(b, args.messages))
    with broker() as b:
        rate, errors = asyncio.run(throughput(b, args.seconds))
    with broker() as b:
        cpu = asyncio.run(idle_cpu(b))
    print(
        table(
            "Broker (issue 2)",
            [
                (
                    f"send -> stream latency, {args.messages} msgs",
                    f"p50 {statistics.median(lat):.2f} ms, p99 {pct(lat, 99):.2f} ms",
                    "p50 ≤ 2 ms, p99 ≤ 10 ms",
                ),
                (
                    "sustained sends, 20 concurrent senders",
                    f"{rate:,.0f} msg/s, {errors} errors",
                    "≥ 1,500 msg/s",
                ),
                ("idle broker CPU, 20 peers streaming", f"{cpu:.2f} % of one core", "≈ 0"),
            ],
        )
    )


if __name__ == "__main__":
    main()
