"""Pattern benchmarks, in process (no broker): how many exact overlap
decisions per second the automaton product makes over a realistic mix of
pattern pairs, and how long IntentIndex takes to find the conflicts of one new
pattern among 10,000 live intents, i.e. the registry's work per announce.

The mix: literal files, directory trees, floating `*.ext`, `src/**/x` and
classes, anchored under a few hundred packages so most pairs are far apart,
as in a real monorepo, with enough near misses to exercise the automaton.

Run: .venv/bin/python bench/bench_patterns.py [--pairs 3000] [--intents 10000] [--rounds 100]
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Rows, run_alone, summary  # noqa: E402
from lockd.core import patterns, probe  # noqa: E402
from lockd.core.models import Intent  # noqa: E402
from lockd.core.overlap import IntentIndex  # noqa: E402

EXTS = ["py", "ts", "md", "css", "json", "go"]


def mixed_pattern(rng: random.Random) -> str:
    """One normalized pattern of the realistic mix (weights in percent)."""
    pkg, mod, ext = rng.randrange(300), rng.randrange(40), rng.choice(EXTS)
    shapes = [
        (40, f"src/pkg{pkg}/mod{mod}.{ext}"),  # literal file: the common case
        (15, f"src/pkg{pkg}/"),  # directory trees
        (10, f"src/pkg{pkg}/mod{mod}/"),
        (10, f"src/pkg{pkg}/**/*.{ext}"),
        (10, f"src/pkg{pkg}/[a-m]*.{ext}"),  # classes
        (5, f"*.{ext}"),  # floating (deduplicated in the index)
        (4, f"src/**/mod{mod}.{ext}"),  # early wildcards: stored high in the trie
        (3, f"src/pkg[0-9]{pkg % 10}/mod?.{ext}"),
        (3, f"**/test_*.{ext}"),
    ]
    raw = rng.choices([r for _, r in shapes], weights=[w for w, _ in shapes])[0]
    return patterns.normalize(raw)


def forget() -> None:
    """Empty the caches of decided pairs (not the compiled automata)."""
    for cached in (patterns._overlap, patterns._meets, patterns._meet_from, probe._meet_from):
        cached.cache_clear()


def best_of(fn: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    """Seconds of the fastest run (the others paid for the shared machine)."""
    best, result = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def overlap_rate(n: int) -> Rows:
    rng = random.Random(1)
    pool = [mixed_pattern(rng) for _ in range(2000)]
    pairs = [(rng.choice(pool), rng.choice(pool)) for _ in range(n)]
    for a, b in pairs:  # compile every automaton first: the index does it at add time
        patterns._nfa(a, False), patterns._nfa(b, False)

    def cold() -> int:
        forget()
        return sum(patterns.overlaps(a, b) for a, b in pairs)

    def cached() -> int:
        return sum(patterns.overlaps(a, b) for a, b in pairs)

    def prefilter() -> int:
        return sum(patterns.could_overlap(a, b) for a, b in pairs)

    t_cold, hits = best_of(cold, repeat=2)
    t_cached, _ = best_of(cached)
    t_pre, passed = best_of(prefilter)
    return [
        (
            f"overlaps(), {n:,} pairs of the mix, uncached",
            f"{n / t_cold:,.0f} decisions/s ({hits / n:.0%} overlap)",
            "exact",
        ),
        ("overlaps(), same pairs again (lru cache)", f"{n / t_cached:,.0f} decisions/s", "—"),
        (
            "could_overlap() pre-filter",
            f"{n / t_pre:,.0f} pairs/s, {1 - passed / n:.0%} rejected",
            "never rejects an overlap",
        ),
    ]


def index_latency(n: int, rounds: int) -> Rows:
    rng = random.Random(2)
    index = IntentIndex()
    seen: set[str] = set()
    while len(index) < n:
        pattern = mixed_pattern(rng)
        if pattern.startswith("/") or pattern not in seen:  # few floating ones, as in life
            seen.add(pattern)
            k = len(index)
            index.add(
                Intent(
                    f"i{k}",
                    f"peer{k % 50}",
                    "r",
                    pattern,
                    rng.choice(["exclusive", "shared"]),
                    "bench",
                    0.0,
                )  # fmt: skip
            )
    # (label, pattern maker, share of rounds): a floating query is tried against
    # every intent, so it gets fewer rounds to keep the whole run short.
    queries: list[tuple[str, Callable[[], str], float]] = [
        ("anchored file", lambda: f"/src/pkg{rng.randrange(300)}/new{rng.randrange(99)}.py", 1),
        ("anchored tree", lambda: f"/src/pkg{rng.randrange(300)}/", 0.3),
        ("floating *.ext", lambda: f"*.{rng.choice(EXTS)}x", 0.1),
    ]
    rows = []
    for label, make, share in queries:
        samples, hits = [], 0
        for _ in range(max(5, int(rounds * share))):
            pattern = make()
            forget()  # a new announce: its pairs are not cached
            t0 = time.perf_counter()
            found = index.conflicts("me", [pattern], "exclusive")
            samples.append((time.perf_counter() - t0) * 1000)
            hits += len(found)
        rows.append(
            (
                f"IntentIndex.conflicts, {n:,} intents, {label} ({len(samples)} runs)",
                f"{summary(samples)} ({hits / len(samples):.1f} conflicts each)",
                "—",
            )
        )
    cands = [len(list(index.candidates(f"/src/pkg{i}/x.py"))) for i in range(0, 300, 7)]
    rows.append(
        (
            "candidates for an anchored file",
            f"median {statistics.median(cands):.0f}, max {max(cands)} of {n:,}",
            "—",
        )
    )
    samples = []
    for _ in range(rounds):
        path = f"src/pkg{rng.randrange(300)}/mod{rng.randrange(40)}.py"
        t0 = time.perf_counter()
        index.claims_on(path)
        samples.append((time.perf_counter() - t0) * 1000)
    rows.append((f"claims_on(path), {n:,} intents", summary(samples), "—"))
    return rows


def run(pairs: int = 3_000, intents: int = 10_000, rounds: int = 100) -> Rows:
    return overlap_rate(pairs) + index_latency(intents, rounds)


if __name__ == "__main__":
    run_alone("Patterns", run)
