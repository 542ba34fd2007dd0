"""Hostile patterns (issue 13): the pattern families that once froze the
broker for seconds, at the limits lockd now enforces (lockd/patterns.py:
MAX_WILDCARDS in a pattern, MAX_CALL_WILDCARDS in a call), against 10,000
live claims.

In process, the registry's own work per announce (as bench_patterns): the
10,000 claims are bench_patterns' realistic mix plus a rival of each family
held by other peers; each family's worst pattern the limits allow is
announced in fresh variants (cold caches): the decision's p50/p99
(IntentIndex.clashes). One step past the limit: the time to refuse.

Through a real broker, the same 10,000 claims (shared mode, 20 holders):
one peer sends 100-pattern hostile announces back to back while another
process asks GET /health every 10 ms: /health's p50/p99, and the announce's.

Run: .venv/bin/python bench/bench_hostile.py [--rounds 30] [--seconds 10]
"""

from __future__ import annotations

import http.client
import multiprocessing
import random
import statistics
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_patterns import forget, mixed_pattern  # noqa: E402
from bench.common import Rows, broker, run_alone, summary  # noqa: E402
from lockd.client.api import Api  # noqa: E402
from lockd.core import patterns  # noqa: E402
from lockd.core.errors import LockdError  # noqa: E402
from lockd.core.models import Intent  # noqa: E402
from lockd.core.overlap import IntentIndex  # noqa: E402
from lockd.testing import Broker  # noqa: E402

W = patterns.MAX_WILDCARDS
REPO = "git:example.com/big/hostile"
LETTERS = string.ascii_lowercase + string.ascii_uppercase


# Each family: (name, pattern with n wildcards in variant v, a rival another peer holds).
def _stars_between(n: int, v: str) -> str:
    return v + "*".join((LETTERS * 2)[: n + 1])  # `a*b*c*…`: n stars


def _long(n: int, v: str) -> str:
    """As long as a pattern may be, n stars spread evenly."""
    text = ("a" * (patterns.MAX_PATTERN_LEN // n - 1) + "*") * n
    return v + text[len(v) :]


FAMILIES: list[tuple[str, Callable[[int, str], str], str]] = [
    ("`*a` then `?`s", lambda n, v: f"*{v}" + "?" * (n - 1), "*a" + "?" * 16),
    ("`*?` repeated", lambda n, v: v + ("*?" * n)[:n], "*?" * 12),
    ("`a*b*c*…`", _stars_between, "*" + "*".join(reversed(LETTERS[:26])) + "*"),
    ("512 chars, evenly starred", lambda n, v: _long(n, v), ("*" + "a" * 15) * 20),
    ("`**/x/` chains", lambda n, v: "/".join(["**", v] * (n - 1)) + "/*", "/**/a/**/a/**"),
    ("classes and stars", lambda n, v: v + "".join((["[a-m]", "*"] * n)[:n]), "*[l-z]" * 12),
]


def hostile_index(n: int = 10_000) -> tuple[IntentIndex, list[str]]:
    rng = random.Random(2)
    index = IntentIndex()
    seen: set[str] = set()
    rivals = [patterns.normalize(r) for _, _, r in FAMILIES]
    for k, pattern in enumerate(rivals):
        index.add(Intent(f"r{k}", f"rival{k}", "r", pattern, "exclusive", "bench", 0.0))
    while len(index) < n:
        pattern = mixed_pattern(rng)
        if pattern.startswith("/") or pattern not in seen:
            seen.add(pattern)
            k = len(index)
            mode = rng.choice(["exclusive", "shared"])
            index.add(Intent(f"i{k}", f"peer{k % 50}", "r", pattern, mode, "bench", 0.0))
    return index, rivals


def _cold() -> None:
    """A new announce: nothing of its pairs is cached."""
    forget()


CPU: list[float] = []  # the decisions' CPU time: what they cost on a machine not shared


def _decide(index: IntentIndex, wanted: list[str]) -> tuple[float, int]:
    _cold()
    t0, c0 = time.perf_counter(), time.process_time()
    patterns.check_limits(wanted)
    found = index.clashes("me", wanted, "exclusive")
    CPU.append((time.process_time() - c0) * 1000)
    return (time.perf_counter() - t0) * 1000, sum(map(len, found))


def _cpu() -> str:
    taken = CPU[:]
    CPU.clear()
    return f"CPU p50 {statistics.median(taken):.1f} ms"


def _refuse(raws: list[str]) -> float:
    t0 = time.perf_counter()
    try:
        patterns.check_limits(patterns.normalize_all(raws))
    except LockdError:
        return (time.perf_counter() - t0) * 1000
    raise AssertionError(f"not refused: {raws[:2]}")


def in_process(rounds: int) -> Rows:
    index, _ = hostile_index()
    rows = []
    variants = [c + d for c in "bcdefghijk" for d in "0123456789"]
    for name, make, _ in FAMILIES:
        samples, clashes = [], 0
        for r in range(rounds):
            took, clashes = _decide(index, [patterns.normalize(make(W, variants[r]))])
            samples.append(took)
        refusals = [_refuse([make(W + 1, variants[r])]) for r in range(rounds)]
        rows.append(
            (
                f"{name}, {W} wildcards ({len(make(W, 'b'))} chars), vs 10,000 live",
                f"decided {summary(samples)}, {_cpu()} ({clashes:,} clashes); "
                f"{W + 1} refused {summary(refusals)}",
                "≤ 20 ms",
            )
        )
    per = patterns.MAX_CALL_WILDCARDS // 3  # `*{i}?*.py`: 3 wildcards each
    samples = []
    for r in range(max(3, rounds // 3)):
        wanted = [patterns.normalize(f"*{variants[r]}{i}?*.py") for i in range(per)]
        took, clashes = _decide(index, wanted)
        samples.append(took)
    issue = [f"*{i}?*.py" for i in range(100)]
    rows.append(
        (
            f"{per} floating `*{{i}}?*.py` in one call (the most the call limit allows)",
            f"decided {summary(samples)}, {_cpu()} ({clashes:,} clashes); the issue's 100 refused "
            f"{summary([_refuse(issue) for _ in range(rounds)])}",
            "≤ 20 ms",
        )
    )
    index.add(Intent("q", "holder", "r", patterns.normalize("*?" * 12), "exclusive", "b", 0.0))
    paths = [f"{'d' * 30}/{'e' * k}" for k in range(1, 31)] + ["d" * 30]
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        hits = sum(any(i.intent_id == "q" for i in index.claims_on(p)) for p in paths)
        samples.append((time.perf_counter() - t0) * 1000)
    rows.append(
        (
            f"check {len(paths)} paths under a 30-char name vs a stored `*?`×12",
            f"{summary(samples)} ({hits} claimed)",
            "—",
        )
    )
    return rows


# ---- through a real broker -----------------------------------------------------------------
def _poll_health(port: int, seconds: float, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples, stop = [], time.perf_counter() + seconds
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        conn.request("GET", "/health")
        conn.getresponse().read()
        samples.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.01)
    out.put(samples)


def fill(b: Broker, n: int) -> None:
    """n live claims of the realistic mix, shared (so none refuses another),
    100 a call from 20 holders, plus every family's rival."""
    rng = random.Random(5)
    holders = [b.register(cwd=f"/w{k}", repo_id=REPO, name=f"holder{k}") for k in range(20)]
    wanted: list[str] = [r for _, _, r in FAMILIES]
    seen = set(wanted)
    while len(wanted) < n:
        pattern = mixed_pattern(rng)
        if pattern not in seen:
            seen.add(pattern)
            wanted.append(pattern)
    for i in range(0, n, 100):
        got = holders[(i // 100) % 20].call(
            Api.announce(REPO, wanted[i : i + 100], "fill", "shared")
        )
        assert got["granted"], got["conflicts"][:1]


def hostile_calls(tag: int) -> dict[str, list[str]]:
    """100-pattern calls within the limits, and the heaviest automata a call allows."""
    return {
        "100 floating `*{i}?` (200 wildcards)": [f"*{tag}x{i}?" for i in range(100)],
        f"8 patterns of {W} wildcards, one per family and more": [
            make(W, f"{tag}v{k}") for k, (_, make, _) in enumerate(FAMILIES + FAMILIES[:2])
        ][: patterns.MAX_CALL_WILDCARDS // W],
    }


def through_broker(seconds: float) -> Rows:
    rows = []
    with broker() as b:
        t0 = time.perf_counter()
        fill(b, 10_000)
        filled = time.perf_counter() - t0
        me = b.register(cwd="/me", repo_id=REPO, name="hostile")
        for label in hostile_calls(0):
            out: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
            poller = multiprocessing.Process(target=_poll_health, args=(b.port, seconds, out))
            poller.start()
            took, listed, total = [], 0, 0
            stop, tag = time.perf_counter() + seconds - 0.5, 0
            while time.perf_counter() < stop:
                tag += 1
                t1 = time.perf_counter()
                got = me.call(Api.announce(REPO, hostile_calls(tag)[label], "hostile"))
                took.append((time.perf_counter() - t1) * 1000)
                listed, total = len(got["conflicts"]), got.get("conflicts_total", 0)
            health = out.get()
            poller.join()
            rows.append(
                (
                    f"{label}, back to back vs 10,000 live ({len(took)} calls)",
                    f"announce {summary(took)} ({total:,} clashes, {listed} listed); "
                    f"/health {summary(health)}, max {max(health):.1f} ms",
                    "/health p99 ≤ 20 ms",
                )
            )
    rows.insert(
        0, ("fill 10,000 claims through the broker (shared, 100 a call)", f"{filled:.1f} s", "—")
    )
    return rows


def run(rounds: int = 30, seconds: float = 10.0) -> Rows:
    return in_process(rounds) + through_broker(seconds)


if __name__ == "__main__":
    run_alone("Hostile patterns", run)
