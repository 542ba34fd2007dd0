"""Intent registry benchmarks (issue 3), measured through a real broker over
HTTP as a client sees them: announce against 10,000 live intents in one repo,
and a check of 1,000 paths against the same 10,000.

The 10,000 intents are a realistic mix for a large monorepo: files and trees
anchored under 100 services, plus a few floating patterns (`*.gen.ts`,
`Makefile`) that every path must be tried against.

Run: .venv/bin/python bench/bench_claims.py [--intents 10000] [--rounds 200]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Rows, broker, run_alone, summary  # noqa: E402
from lockd.client.api import Api  # noqa: E402
from lockd.testing import Broker  # noqa: E402

REPO = "git:example.com/big/monorepo"
FLOATING = ["*.gen.ts", "Makefile", "*.lock", "*.snap", "**/fixtures/*.json"]


def intent_patterns(n: int) -> list[str]:
    """n distinct patterns: mostly anchored files and trees, a few floating."""
    out = list(FLOATING)
    i = 0
    while len(out) < n:
        svc, mod = i % 100, (i // 100) % 50
        kind = i % 4
        if kind == 0:
            out.append(f"services/svc{svc}/mod{mod}/")
        elif kind == 1:
            out.append(f"services/svc{svc}/mod{mod}/handler{i}.py")
        elif kind == 2:
            out.append(f"services/svc{svc}/lib/*_{i}.py")
        else:
            out.append(f"services/svc{svc}/docs/**/page{i}.md")
        i += 1
    return out[:n]


def fill(b: Broker, n: int) -> None:
    """n live intents held by 10 peers (batches of 100 patterns per call).
    Trees and floating patterns overlap many others, so one peer holds them all."""
    pats = intent_patterns(n)
    wide = [p for p in pats if p.endswith("/") or "/" not in p.rstrip("/") or p.startswith("**")]
    narrow = [p for p in pats if p not in set(wide)]
    holders = [b.register(cwd=f"/w{k}", repo_id=REPO, name=f"holder{k}") for k in range(10)]
    batches = [(holders[0], wide[i : i + 100]) for i in range(0, len(wide), 100)]
    batches += [
        (holders[1 + (i // 100) % 9], narrow[i : i + 100]) for i in range(0, len(narrow), 100)
    ]
    for holder, batch in batches:
        got = holder.call(Api.announce(REPO, batch, "bench"))
        assert got["granted"], got["conflicts"][:1]


def announce_latency(b: Broker, rounds: int) -> tuple[list[float], list[float]]:
    """Granted announcements of fresh patterns, and refused ones (conflicts)."""
    me = b.register(cwd="/me", repo_id=REPO, name="bencher")
    granted, refused = [], []
    for r in range(rounds):
        t0 = time.perf_counter()
        got = me.call(Api.announce(REPO, [f"services/svc{r % 100}/new/file{r}.py"], "bench"))
        granted.append((time.perf_counter() - t0) * 1000)
        assert got["granted"]
        t0 = time.perf_counter()
        got = me.call(Api.announce(REPO, [f"services/svc{4 * r % 100}/mod{r % 50}/x.py"], "bench"))
        refused.append((time.perf_counter() - t0) * 1000)
        assert not got["granted"]
    return granted, refused


def check_latency(b: Broker, rounds: int, n_paths: int = 1000) -> list[float]:
    client = b.client()
    paths = [
        f"services/svc{i % 100}/{'mod' + str(i % 50) if i % 2 else 'lib'}/f_{i}.py"
        for i in range(n_paths)
    ]
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        client.call(Api.check(REPO, paths))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run(intents: int = 10_000, rounds: int = 200) -> Rows:
    with broker() as b:
        t0 = time.perf_counter()
        fill(b, intents)
        fill_s = time.perf_counter() - t0
        granted, refused = announce_latency(b, rounds)
        check = check_latency(b, max(20, rounds // 10))
    return [
        (f"fill {intents:,} intents (100 per call)", f"{fill_s:.1f} s", "—"),
        (
            f"announce, granted, vs {intents:,} live",
            summary(granted),
            "p50 ≤ 5 ms",
        ),
        (
            f"announce, refused, vs {intents:,} live",
            summary(refused),
            "p50 ≤ 5 ms",
        ),
        (
            f"check 1,000 paths vs {intents:,}",
            summary(check),
            "≤ 50 ms",
        ),
    ]


if __name__ == "__main__":
    run_alone("Intents", run)
