"""Shared pieces of the benchmarks: a throwaway broker, percentiles, tables."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from lockd.testing import Broker, free_port


@contextlib.contextmanager
def broker() -> Iterator[Broker]:
    with tempfile.TemporaryDirectory(prefix="lockd-bench-") as tmp:
        b = Broker(Path(tmp), free_port())
        os.environ["LOCKD_HOME"], os.environ["LOCKD_PORT"] = tmp, str(b.port)
        b.start()
        try:
            yield b
        finally:
            b.stop()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(values_ms: list[float]) -> str:
    return f"p50 {statistics.median(values_ms):.2f} ms, p99 {pct(values_ms, 99):.2f} ms"


def table(title: str, rows: list[tuple[str, str, str]]) -> str:
    out = [
        f"### {title}",
        "",
        f"{platform.node()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · {time.strftime('%Y-%m-%d')}",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(out)
