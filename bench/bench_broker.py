"""Broker-level benchmarks (issue 2): send -> stream latency, sustained
throughput with 20 concurrent senders, idle CPU with 20 connected peers.
Load comes from separate processes with a minimal HTTP client, so the broker,
not the load generator, is what is measured on a 2-core machine.

Run: .venv/bin/python bench/bench_broker.py [--messages 500] [--seconds 5]
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Rows, broker, run_alone, summary  # noqa: E402
from lockd.client.aio import AsyncClient  # noqa: E402
from lockd.client.api import Api
from lockd.testing import Broker  # noqa: E402


async def peer(port: int, token: str, name: str) -> AsyncClient:
    anon = AsyncClient(f"http://127.0.0.1:{port}", token)
    status, body = await anon.exchange(
        Api.register(
            cwd="/bench", repo_id="dir:/bench", repo_root="/bench", kind="person", name=name
        )
    )
    assert status == 200, body
    await anon.aclose()
    return AsyncClient(f"http://127.0.0.1:{port}", token, body["credential"])


async def latency(b: Broker, n: int, receiver_on: Broker | None = None) -> list[float]:
    """One message in flight at a time: send through `b`, time until it arrives
    on a stream held on `receiver_on` (another replica) or on `b` itself."""
    rb = receiver_on or b
    sender, receiver = await peer(b.port, b.token, "sender"), await peer(rb.port, rb.token, "rcv")
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def listen() -> None:
        async for event, data in receiver.stream():
            if event == "message":
                arrived.put_nowait(time.perf_counter())
                await receiver.exchange(Api.ack([data["message_id"]]))

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        await sender.exchange(Api.send("rcv", f"m{i}"))
        samples.append((await asyncio.wait_for(arrived.get(), 10) - t0) * 1000)
        await asyncio.sleep(0.002)  # let the ack land: one message in flight at a time
    task.cancel()
    return samples


def _sender_process(port: int, token: str, names: list[str], seconds: float, out: Any) -> None:
    async def run() -> tuple[int, int]:
        clients = [await peer(port, token, n) for n in names]
        sent = errors = 0
        stop = time.perf_counter() + seconds

        async def loop(c: AsyncClient) -> None:
            nonlocal sent, errors
            while time.perf_counter() < stop:
                status, _ = await c.exchange(Api.send("sink", "x"))
                sent, errors = sent + (status == 200), errors + (status != 200)

        await asyncio.gather(*(loop(c) for c in clients))
        return sent, errors

    out.put(asyncio.run(run()))


def throughput(b: Broker, seconds: float, senders: int = 20, procs: int = 2) -> tuple[float, int]:
    asyncio.run(peer(b.port, b.token, "sink"))
    out: multiprocessing.Queue[tuple[int, int]] = multiprocessing.Queue()
    per = senders // procs
    workers = [
        multiprocessing.Process(
            target=_sender_process,
            args=(b.port, b.token, [f"s{p}-{i}" for i in range(per)], seconds, out),
        )
        for p in range(procs)
    ]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    sent = sum(r[0] for r in results)
    return sent / max(elapsed - 0.2, seconds), sum(r[1] for r in results)


async def idle_cpu(b: Broker, peers: int = 20, seconds: float = 10.0) -> float:
    clients = [await peer(b.port, b.token, f"idle{i}") for i in range(peers)]

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
    return ((after.user + after.system) - (before.user + before.system)) / seconds * 100


def run(messages: int = 500, seconds: float = 5.0) -> Rows:
    with broker() as b:
        lat = asyncio.run(latency(b, messages))
    with broker() as b:
        rate, errors = throughput(b, seconds)
    with broker() as b:
        cpu = asyncio.run(idle_cpu(b))
    return [
        (
            f"send → stream latency ({messages} msgs)",
            summary(lat),
            "p50 ≤ 2 ms, p99 ≤ 10 ms",
        ),
        (
            "sustained sends, 20 concurrent senders",
            f"{rate:,.0f} msg/s, {errors} errors",
            "≥ 1,500 msg/s",
        ),
        ("idle broker CPU, 20 peers streaming", f"{cpu:.2f} % of one core", "≈ 0"),
    ]


if __name__ == "__main__":
    run_alone("Broker", run)
