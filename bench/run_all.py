"""Every benchmark in one command, one markdown report.

Run: .venv/bin/python bench/run_all.py [--quick] [--out bench/RESULTS.md]

Each section is a separate module's `run()`, so each can also be run alone
(`bench/bench_broker.py`, `bench_claims.py`, `bench_hooks.py`, `bench_forecast.py`,
`bench_mcp.py`, `bench_patterns.py`, `bench_hostile.py`, `bench_soak.py` (15 minutes of churn),
`bench_team.py`, which needs PostgreSQL,
`bench_clients.py`, which needs the Claude Code CLI from `npm ci --prefix
tests/clients`). Figures are medians and p99 over repeated runs: these machines
are shared and noisy, so read ratios and medians, not single runs.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (  # noqa: E402
    bench_broker,
    bench_claims,
    bench_clients,
    bench_forecast,
    bench_hooks,
    bench_hostile,
    bench_mcp,
    bench_patterns,
    bench_soak,
    bench_team,
)
from bench.common import Rows, table  # noqa: E402


def sections(quick: bool) -> list[tuple[str, Callable[[], Rows]]]:
    return [
        ("Broker", lambda: bench_broker.run(200 if quick else 500, 3 if quick else 5)),
        ("Intents", lambda: bench_claims.run(10_000, 50 if quick else 200)),
        ("Patterns", lambda: bench_patterns.run(rounds=30 if quick else 100)),
        (
            "Hostile patterns",
            lambda: bench_hostile.run(10 if quick else 30, 5.0 if quick else 10.0),
        ),
        ("Git hooks", lambda: bench_hooks.run(7 if quick else 15)),
        ("Activity and the merge forecast", lambda: bench_forecast.run(5 if quick else 15)),
        ("MCP end to end", lambda: bench_mcp.run(100 if quick else 150, 10 if quick else 30)),
        (
            "Team server (PostgreSQL)",
            lambda: bench_team.run(100 if quick else 300, 3 if quick else 5),
        ),  # noqa: E501
        (
            "Soak (runs for months)",
            lambda: bench_soak.run(120, 40) if quick else bench_soak.run(900, 300),
        ),
        (
            "Under the real Claude Code",
            lambda: bench_clients.run(2 if quick else 3, 3 if quick else 5),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI smoke run)")
    parser.add_argument("--out", default=None, help="also write the report to this file")
    args = parser.parse_args()
    started = time.time()
    parts = [
        "## Benchmarks",
        "",
        f"`python bench/run_all.py` on {platform.machine()}, {time.strftime('%Y-%m-%d')}.",
    ]
    for title, run in sections(args.quick):
        print(f"running {title}…", file=sys.stderr, flush=True)
        parts += ["", table(title, run())]
    parts += ["", f"_{time.time() - started:.0f} s in all._"]
    report = "\n".join(parts)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()
