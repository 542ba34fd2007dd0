"""The merge forecast and activity reporting (issue 18).

- A forecast refresh for one repo with 10 worktrees and 1,000 changed files in
  all (per worktree: 50 files in commits on its branch, 50 uncommitted, two of
  the worktrees conflicting on one file): cold (a fresh process: every
  snapshot and all 45 merges), after one worktree changed one file, and with
  nothing changed. Goal ≤ 200 ms a refresh.
- The rate limit: back-to-back refresh attempts for 3 s get at most one a
  second (goal ≤ 1 refresh/s/repo).
- What activity reporting adds to a PostToolUse hook: the report's round trip
  in-process, and the guard hook end to end with and without it (PreToolUse
  does not report). Goal ≤ 10 ms.

Run alone: .venv/bin/python bench/bench_forecast.py [--runs 15]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_hooks import GIT_ENV, agent_session, git, time_runs  # noqa: E402
from bench.common import Rows, broker, pct, run_alone, summary  # noqa: E402
from lockd.client.activity import read_changes  # noqa: E402
from lockd.client.api import Api  # noqa: E402
from lockd.client.forecast import Forecaster, gate  # noqa: E402
from lockd.local.repo import identify  # noqa: E402

WORKTREES = 10
COMMITTED = 50  # files per worktree, in commits on its branch
UNCOMMITTED = 50  # files per worktree, changed in its working tree


def build(root: Path, shared: bool = False) -> tuple[Path, list[Path]]:
    """A repo, 1,000 base files, 10 worktrees with 100 changed files each.
    `shared`: each worktree also changes its own line of one common file, so
    every pair must really be merged (the worst case: 45 merge-trees)."""
    repo = root / "repo"
    (repo / "common").mkdir(parents=True)
    lines = [f"line {n}\n" for n in range(3 * WORKTREES)]
    (repo / "shared.txt").write_text("".join(lines))
    for k in range(WORKTREES * UNCOMMITTED):
        (repo / "common" / f"c{k}.py").write_text(f"line one\nvalue = {k}\nline three\n")
    for k in range(500):
        (repo / "docs" / f"d{k}.md").parent.mkdir(exist_ok=True)
        (repo / "docs" / f"d{k}.md").write_text(f"doc {k}\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    trees = []
    for i in range(WORKTREES):
        wt = root / f"wt{i}"
        git(repo, "worktree", "add", "-q", "-b", f"b{i}", str(wt))
        (wt / "own").mkdir()
        for j in range(COMMITTED):
            (wt / "own" / f"w{i}_{j}.py").write_text(f"worktree {i} file {j}\n")
        git(wt, "add", "-A")
        git(wt, "commit", "-q", "-m", f"work of {i}")
        for j in range(UNCOMMITTED):
            k = i * UNCOMMITTED + j
            (wt / "common" / f"c{k}.py").write_text(f"line one\nvalue = {k} by {i}\nline three\n")
        if shared:
            mine = list(lines)
            mine[3 * i + 1] = f"line {3 * i + 1} by {i}\n"
            (wt / "shared.txt").write_text("".join(mine))
        trees.append(wt)
    # Worktrees 0 and 1 change the same line of one file: the one true conflict.
    (trees[1] / "common" / "c0.py").write_text("line one\nvalue = 0 by 1\nline three\n")
    return repo, trees


def forecast_rows(runs: int) -> Rows:
    rows = []
    with tempfile.TemporaryDirectory(prefix="lockd-fc-bench-") as tmp:
        os.environ.update(GIT_ENV)
        os.environ["LOCKD_HOME"] = tmp
        repo, trees = build(Path(tmp))
        repo_id = identify(str(repo)).repo_id
        peers = [{"peer_id": f"p-{i}", "checkout": str(t)} for i, t in enumerate(trees)]
        changed = sum(r["total"] for r in map(read_changes, map(str, trees)))
        cold, one, idle = [], [], []
        for n in range(runs):
            f = Forecaster()
            t0 = time.perf_counter()
            verdicts = f.compute(repo_id, peers)
            cold.append((time.perf_counter() - t0) * 1000)
            conflicts = [v for v in verdicts if v["conflict"]]
            assert len(verdicts) == 45 and len(conflicts) == 1, conflicts
            target = trees[n % WORKTREES] / "common" / f"c{(n % WORKTREES) * UNCOMMITTED}.py"
            target.write_text(f"edited again {n}\n")
            t0 = time.perf_counter()
            f.compute(repo_id, peers)
            one.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            f.compute(repo_id, peers)
            idle.append((time.perf_counter() - t0) * 1000)
            f.close()
        scan = []
        for _ in range(runs):
            t0 = time.perf_counter()
            read_changes(str(trees[0]))
            scan.append((time.perf_counter() - t0) * 1000)
        count, gap = gated(repo_id)
        worst = worst_case(Path(tmp) / "worst", runs)
        label = f"{WORKTREES} worktrees, {changed:,} changed files, 45 pairs"
        rows += [
            (f"forecast refresh, cold ({label})", summary(cold), "≤ 200 ms"),
            ("forecast refresh, one worktree changed one file", summary(one), "≤ 200 ms"),
            ("forecast refresh, nothing changed", summary(idle), "≤ 200 ms"),
            ("worst case, cold: every pair shares a file (45 merge-trees)", summary(worst), "—"),
            ("activity scan of one worktree (100 changed files)", summary(scan), "—"),
            (
                "refreshes let through in 3 s of back-to-back attempts from 2 processes",
                f"{count}, at least {gap:.2f} s apart",
                "≤ 1 a second",
            ),
        ]
    return rows


def worst_case(root: Path, runs: int) -> list[float]:
    repo, trees = build(root, shared=True)
    repo_id = identify(str(repo)).repo_id
    peers = [{"peer_id": f"p-{i}", "checkout": str(t)} for i, t in enumerate(trees)]
    out = []
    for _ in range(max(3, runs // 3)):
        f = Forecaster()
        t0 = time.perf_counter()
        verdicts = f.compute(repo_id, peers)
        out.append((time.perf_counter() - t0) * 1000)
        assert f.last_timing["merged"] == 45 and sum(v["conflict"] for v in verdicts) == 1
        f.close()
    return out


def gated(repo_id: str, seconds: float = 3.0) -> tuple[int, float]:
    """Refreshes the gate allows when asked as fast as possible, from two
    processes at once (this one and a child), for `seconds`: how many, and
    the shortest time between two of them."""
    code = (
        "import time\nfrom lockd.client.forecast import gate\n"
        f"end = time.monotonic() + {seconds}\n"
        "while time.monotonic() < end:\n"
        f"    with gate({repo_id!r}) as may:\n"
        "        if may: print(time.time())\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    mine, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        with gate(repo_id) as may:
            if may:
                mine.append(time.time())
    out, _ = child.communicate()
    times = sorted(mine + [float(x) for x in out.split()])
    gap = min((b - a for a, b in zip(times, times[1:], strict=False)), default=seconds)
    return len(times), gap


def hook_rows(runs: int) -> Rows:
    rows = []
    with broker() as b, tempfile.TemporaryDirectory(prefix="lockd-act-bench-") as tmp:
        repo = Path(tmp) / "repo"
        (repo / "src").mkdir(parents=True)
        (repo / "src" / "app.py").write_text("x\n")
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "base")
        agent_session(b, repo)
        saved = json.loads((Path(b.home) / "sessions" / "bench.json").read_text())
        client = b.client(saved["credential"])
        report = []
        for _ in range(runs * 10):
            t0 = time.perf_counter()
            client.call(Api.report_activity(edited=["src/app.py"]))
            report.append((time.perf_counter() - t0) * 1000)
        rows.append(("activity report round trip (in-process)", summary(report), "≤ 10 ms"))
        argv = [sys.executable, "-m", "lockd", "guard", "--hook"]
        bodies = {
            event: json.dumps(
                {
                    "session_id": "bench",
                    "cwd": str(repo),
                    "hook_event_name": event,
                    "tool_name": "Edit",
                    "tool_input": {"file_path": str(repo / "src/app.py")},
                }
            )
            for event in ("PreToolUse", "PostToolUse")
        }
        hooks: dict[str, list[float]] = {event: [] for event in bodies}
        for _ in range(runs):  # interleaved: the shared machine's drift hits both alike
            for event, body in bodies.items():
                hooks[event] += time_runs(argv, repo, 1, "", body)
        pre, post = statistics.median(hooks["PreToolUse"]), statistics.median(hooks["PostToolUse"])
        rows.append(("guard hook, PreToolUse (no report)", summary(hooks["PreToolUse"]), "—"))
        rows.append(
            ("guard hook, PostToolUse (reports the edit)", summary(hooks["PostToolUse"]), "—")
        )
        rows.append(
            (
                "what reporting adds to PostToolUse (p50 difference)",
                f"{post - pre:.1f} ms (p99 of the report alone {pct(report, 99):.1f} ms)",
                "≤ 10 ms",
            )
        )
    return rows


def run(runs: int = 15) -> Rows:
    return forecast_rows(runs) + hook_rows(runs)


if __name__ == "__main__":
    run_alone("Activity and the merge forecast", run)
