"""Team-server benchmarks (issue 8), on the machine's real PostgreSQL:
cross-replica message latency (sent through replica A, pushed by replica B to
a stream held there), and claim throughput on PostgreSQL beside SQLite in the
same run, with the same load.

Needs a PostgreSQL server: LOCKD_BENCH_PG (default
postgresql://postgres@127.0.0.1:5432); a throwaway database is created and
dropped.

Run: .venv/bin/python bench/bench_team.py [--messages 300] [--seconds 5]
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_broker import latency, peer  # noqa: E402
from bench.bench_claims import REPO, fill  # noqa: E402
from bench.common import Rows, run_alone, summary  # noqa: E402
from lockd.client.api import Api  # noqa: E402
from lockd.testing import Broker, free_port  # noqa: E402

PG_SERVER = os.environ.get("LOCKD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
CLAIMERS = 16


@contextlib.contextmanager
def database() -> Iterator[str]:
    name = f"lockd_bench_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{PG_SERVER}/{name}"
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def brokers(count: int, db: str | None) -> Iterator[list[Broker]]:
    """`count` brokers on one database (db None: one broker on SQLite)."""
    with tempfile.TemporaryDirectory(prefix="lockd-bench-") as tmp:
        started = []
        try:
            for n in range(count):
                home = Path(tmp) / f"replica-{n}"
                home.mkdir()
                b = Broker(home, free_port(), db=db)
                b.start()
                started.append(b)
            yield started
        finally:
            for b in started:
                b.stop()


def _claimer_process(targets: list[tuple[int, str]], seconds: float, out: Any) -> None:
    """CLAIMERS peers, spread over the brokers, each announcing a file of its
    own (no conflicts: the cost measured is the decision and the commit) and
    releasing it, as fast as answers come."""

    async def run() -> tuple[int, int, list[float]]:
        clients = [await peer(*targets[i % len(targets)], f"c{i}") for i in range(CLAIMERS)]
        granted = errors = 0
        samples: list[float] = []
        stop = time.perf_counter() + seconds

        async def loop(i: int, c: Any) -> None:
            nonlocal granted, errors
            k = 0
            while time.perf_counter() < stop:
                k += 1
                t0 = time.perf_counter()
                status, answer = await c.exchange(
                    Api.announce("git:bench/app", [f"src/c{i}/f{k}.py"], "bench")
                )
                samples.append((time.perf_counter() - t0) * 1000)
                if status != 200 or not answer["granted"]:
                    errors += 1
                    continue
                granted += 1
                ids = [x["intent_id"] for x in answer["intents"]]
                status, _ = await c.exchange(Api.release("git:bench/app", ids))
                errors += status != 200

        await asyncio.gather(*(loop(i, c) for i, c in enumerate(clients)))
        return granted, errors, samples

    out.put(asyncio.run(run()))


def claim_throughput(bs: list[Broker], seconds: float) -> tuple[float, int, list[float]]:
    out: multiprocessing.Queue[tuple[int, int, list[float]]] = multiprocessing.Queue()
    worker = multiprocessing.Process(
        target=_claimer_process, args=([(b.port, b.token) for b in bs], seconds, out)
    )
    worker.start()
    granted, errors, samples = out.get()
    worker.join()
    return granted / seconds, errors, samples


def claim_propagation(a: Broker, b: Broker, rounds: int) -> tuple[list[float], list[float]]:
    """A claim granted through A (its own latency), until B's check_paths
    names it (B polled as fast as it answers)."""
    holder = a.register(cwd="/w-prop", repo_id=REPO, name="propagator")
    viewer = b.client()
    announce, spread = [], []
    for i in range(rounds):
        path = f"prop/f{i}.py"
        t0 = time.perf_counter()
        assert holder.call(Api.announce(REPO, [path], "bench"))["granted"]
        announce.append((time.perf_counter() - t0) * 1000)
        while not viewer.call(Api.check(REPO, [path]))["paths"][0]["claims"]:
            pass
        spread.append((time.perf_counter() - t0) * 1000)
    return announce, spread


def run(messages: int = 300, seconds: float = 5.0, intents: int = 10_000) -> Rows:
    rows = []
    with database() as db, brokers(1, db) as (a,):
        same = asyncio.run(latency(a, messages))
    with database() as db, brokers(2, db) as (a, b):
        cross = asyncio.run(latency(a, messages, receiver_on=b))
        fill(a, intents)
        announce, spread = claim_propagation(a, b, 100)
    rows += [
        (
            f"PostgreSQL, one replica: send → stream ({messages} msgs)",
            summary(same),
            "(reference)",
        ),
        (
            f"PostgreSQL, across replicas: send via A → stream on B ({messages} msgs)",
            summary(cross),
            "within milliseconds",
        ),
        (
            f"PostgreSQL announce, granted, vs {intents:,} live (two replicas up)",
            summary(announce),
            "p50 ≤ 5 ms",
        ),
        (
            f"claim through A until B's check_paths names it ({intents:,} live intents)",
            summary(spread),
            "within milliseconds",
        ),
    ]
    runs = [("SQLite, one broker", None, 1), ("PostgreSQL, one broker", "pg", 1),
            ("PostgreSQL, two replicas", "pg", 2)]  # fmt: skip
    base = None
    for label, engine, count in runs:
        with contextlib.ExitStack() as stack:
            db = stack.enter_context(database()) if engine else None
            bs = stack.enter_context(brokers(count, db))
            rate, errors, samples = claim_throughput(bs, seconds)
        base = base or rate
        rows.append(
            (
                f"claims/s, {CLAIMERS} claimers (announce + release): {label}",
                f"{rate:,.0f}/s ({rate / base:.2f}× SQLite), announce {summary(samples)}, "
                f"{errors} errors",
                "side by side",
            )
        )
    return rows


if __name__ == "__main__":
    run_alone("Team server (PostgreSQL)", run)
