"""Shared pieces of the benchmarks: a throwaway broker, percentiles, tables,
and the command line that runs one benchmark alone."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lockd.testing import Broker, free_port

Rows = list[tuple[str, str, str]]  # measure, result, target: one table row each


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


def table(title: str, rows: Rows) -> str:
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


def run_alone(title: str, run: Callable[..., Rows]) -> None:
    """One benchmark's command line: each keyword of its `run()` is an option,
    with run()'s default and type, so the two cannot drift apart."""
    parser = argparse.ArgumentParser(description=sys.modules[run.__module__].__doc__)
    for name, param in inspect.signature(run, eval_str=True).parameters.items():
        parser.add_argument(f"--{name}", type=param.annotation, default=param.default)
    print(table(title, run(**vars(parser.parse_args()))))
