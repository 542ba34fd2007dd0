"""Soak (issue 15): sessions churning for minutes against one broker, with
SIGKILLs and clean exits, and what the broker keeps sampled over time: its
RSS, its open files, the database's size, the session files, the peers in
its memory, SQLite's own memory. Retention runs with a short window (60 s,
every 10 s) so that a run of minutes shows the store bounded by it;
afterwards every count must come back to where it started. The RSS slope is
taken after `--warmup` seconds (by then SQLite's page cache and the streams'
id windows are full: bounded, but they fill over the first minutes).

Run: .venv/bin/python bench/bench_soak.py [--seconds 900] [--warmup 300] [--long 6] [--every 2]
     [--probe DIR]  (the broker's allocators every 30 s into DIR/memory.log: bench/memprobe)
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Rows, run_alone  # noqa: E402
from lockd.client.api import Api  # noqa: E402
from lockd.testing import Broker, free_port  # noqa: E402

SESSION = Path(__file__).resolve().parent / "soak_session.py"
MEMPROBE = Path(__file__).resolve().parent / "memprobe"


@dataclass
class Sample:
    at: float  # seconds since the start
    rss_mb: float
    fds: int
    db_kb: float
    session_files: int
    peers_in_memory: int
    sessions_running: int
    sqlite_mb: float  # SQLite's own memory in the broker (-1: not known)


@dataclass
class Soak:
    samples: list[Sample] = field(default_factory=list)
    baseline: Sample | None = None
    after: Sample | None = None
    started: int = 0
    killed: int = 0
    closed: int = 0
    errors: int = 0
    error_lines: list[str] = field(default_factory=list)  # the first few, to say what failed
    settle_seconds: float = 0.0
    left_files: list[str] = field(default_factory=list)  # session files still there at the end


def retention_env(window: float, every: float) -> dict[str, str]:
    days = f"{window / 86400:.8f}"
    return {
        "LOCKD_RETENTION_DAYS": days,
        "LOCKD_PEER_RETENTION_DAYS": days,
        "LOCKD_MESSAGE_RETENTION_DAYS": days,
        "LOCKD_NAME_HOLD_SECONDS": "0",
        "LOCKD_RETENTION_EVERY_SECONDS": str(every),
    }


def sample(b: Broker, t0: float, running: int) -> Sample:
    proc = psutil.Process(b.proc.pid)  # type: ignore[union-attr]
    db = b.home / "lockd.db"
    size = sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
    kept = b.client().call(Api.store_status())
    return Sample(
        at=time.monotonic() - t0,
        rss_mb=proc.memory_info().rss / 2**20,
        fds=proc.num_fds(),
        db_kb=size / 1024,
        session_files=len(list((b.home / "sessions").glob("*.json"))),
        peers_in_memory=kept["memory"]["peers"],
        sessions_running=running,
        sqlite_mb=kept["memory"].get("engine_bytes", -1) / 2**20,
    )


def slope(points: list[tuple[float, float]]) -> float:
    """Least squares, per minute (x in seconds)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 60 * sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


@contextlib.contextmanager
def broker(window: float, every: float, probe: str = "") -> Iterator[Broker]:
    """With `probe`, a folder: the broker runs bench/memprobe (what each of its
    allocators holds, every 30 s, into probe/memory.log)."""
    env = retention_env(window, every)
    if probe:
        Path(probe).mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join(filter(None, [str(MEMPROBE), os.environ.get("PYTHONPATH")]))
        env.update(PYTHONPATH=path, LOCKD_PROBE_DIR=str(Path(probe).resolve()))
    with tempfile.TemporaryDirectory(prefix="lockd-soak-") as tmp:
        b = Broker(Path(tmp) / "home", free_port(), extra_env=env)
        b.home.mkdir()
        b.start()
        try:
            yield b
        finally:
            b.stop()


class Churn:
    """The sessions of one soak: started, killed or closed, and reaped."""

    def __init__(self, b: Broker, work: str, result: Soak) -> None:
        self.env = {**os.environ, **b.env}
        self.work = work
        self.result = result
        self.procs: list[tuple[subprocess.Popen[str], float]] = []  # proc, when to SIGKILL it
        self.closing: set[int] = set()  # pids that say goodbye on their own

    def running(self) -> int:
        return sum(p.poll() is None for p, _ in self.procs)

    def spawn(self, name: str, rounds: int, end: str, kill_at: float) -> None:
        self.result.started += 1
        proc = subprocess.Popen(
            [sys.executable, str(SESSION), name, self.work, str(rounds), end],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append((proc, kill_at))
        if end == "close":
            self.closing.add(proc.pid)

    def kill_due(self, now: float) -> None:
        for proc, kill_at in self.procs:
            if proc.poll() is None and now >= kill_at:
                proc.send_signal(signal.SIGKILL)
                self.result.killed += 1

    def end(self) -> None:
        """SIGKILL whatever still runs, reap all, count errors and clean exits."""
        self.kill_due(float("inf"))
        for proc, _ in self.procs:
            _, err = proc.communicate()
            self.result.errors += err.count("error ")
            self.result.error_lines += [line for line in err.splitlines() if "error " in line][:5]
            self.result.closed += proc.pid in self.closing and proc.returncode == 0


def _peer_of(path: Path) -> str:
    try:
        return str(json.loads(path.read_text() or "{}").get("peer_id") or "(no peer id)")
    except (OSError, ValueError):
        return "(unreadable)"


def settle(b: Broker, base: Sample, t0: float, limit: float) -> float:
    """Seconds until peers in memory, session files and open files are back at `base`."""
    ended = time.monotonic()
    while time.monotonic() - ended < limit:
        now = sample(b, t0, 0)
        if (
            now.peers_in_memory <= base.peers_in_memory
            and now.session_files <= base.session_files
            and now.fds <= base.fds + 2
        ):
            break
        time.sleep(1)
    return time.monotonic() - ended


def soak(
    seconds: float,
    long: int = 6,
    every: float = 2.0,
    window: float = 60.0,
    period: float = 5.0,
    probe: str = "",
) -> Soak:
    """Churn for `seconds` (a session started every `every` s: half SIGKILLed
    after 3-8 s, half closing after a few rounds), sampling every `period` s;
    then stop every session and wait (up to two windows) for the counts to
    come back to their baseline."""
    result, rng = Soak(), random.Random(15)
    with broker(window, 10.0, probe) as b, tempfile.TemporaryDirectory() as work:
        churn = Churn(b, work, result)
        t0 = time.monotonic()
        result.baseline = sample(b, t0, 0)
        stop = threading.Event()

        def sampler() -> None:
            while not stop.wait(period):
                with contextlib.suppress(Exception):
                    result.samples.append(sample(b, t0, churn.running()))

        watcher = threading.Thread(target=sampler, daemon=True)
        watcher.start()
        for n in range(long):
            churn.spawn(f"long{n}", 0, "hang", float("inf"))
        n = 0
        while (now := time.monotonic()) - t0 < seconds:
            if now - t0 >= n * every:
                n += 1
                if rng.random() < 0.5:  # killed mid-work, whatever it was doing
                    churn.spawn(f"kill{n}", 0, "hang", now + rng.uniform(3, 8))
                else:  # works a few rounds, then says goodbye
                    churn.spawn(f"close{n}", rng.randint(4, 12), "close", now + 60)
            churn.kill_due(now)
            time.sleep(0.1)
        churn.end()
        result.settle_seconds = settle(b, result.baseline, t0, 2 * window + 30)
        stop.set()
        watcher.join()
        result.after = sample(b, t0, 0)
        result.left_files = [  # a peer id, never a credential
            f"left: {p.name} {_peer_of(p)}" for p in sorted((b.home / "sessions").glob("*.json"))
        ]
    return result


def run(
    seconds: float = 900, warmup: float = 300, long: int = 6, every: float = 2.0, probe: str = ""
) -> Rows:
    got = soak(seconds, long, every, probe=probe)
    warm = [s for s in got.samples if warmup <= s.at <= seconds]
    rss = slope([(s.at, s.rss_mb) for s in warm])
    db = slope([(s.at, s.db_kb) for s in warm])
    base, after = got.baseline, got.after
    assert base is not None and after is not None
    for line in got.error_lines + got.left_files:  # what went wrong, beside the table
        print(line, file=sys.stderr)
    over_time = " → ".join(
        f"{s.session_files}" for s in got.samples[:: max(1, len(got.samples) // 8)]
    )
    return [
        (
            f"Churn: {seconds / 60:.0f} min, {long} long sessions + one every {every:g} s "
            f"({got.started} in all, {got.killed} SIGKILLed, {got.closed} closed)",
            f"{got.errors} errors",
            "0 errors",
        ),
        (
            f"Broker RSS slope over the {(seconds - warmup) / 60:.0f} min after "
            f"{warmup / 60:.0f} min of warm-up",
            f"{rss:+.3f} MB/min "
            f"({min(s.rss_mb for s in warm):.0f}-{max(s.rss_mb for s in warm):.0f} MB)",
            "≤ 0.05 MB/min",
        ),  # fmt: skip
        (
            "Database size slope after warm-up (retention window 60 s)",
            f"{db:+.1f} KB/min, max {max(s.db_kb for s in got.samples):.0f} KB",
            "flat: bounded by the window",
        ),  # fmt: skip
        (
            "Broker RSS: at warm-up's end / end of churn / settled",
            f"{warm[0].rss_mb:.1f} / {warm[-1].rss_mb:.1f} / {after.rss_mb:.1f} MB",
            "no growth",
        ),  # fmt: skip
        (
            "SQLite's own memory in the broker: start / peak / after (page cache cap 2 MiB)",
            f"{base.sqlite_mb:.2f} / {max(s.sqlite_mb for s in got.samples):.2f} / "
            f"{after.sqlite_mb:.2f} MiB",
            "under its cap",
        ),  # fmt: skip
        ("Session files over time", over_time, "bounded"),
        (
            "Open files: start / peak / after",
            f"{base.fds} / {max(s.fds for s in got.samples)} / {after.fds}",
            "back to start",
        ),  # fmt: skip
        (
            "Peers in broker memory: start / peak / after",
            f"{base.peers_in_memory} / {max(s.peers_in_memory for s in got.samples)} / "
            f"{after.peers_in_memory}",
            "back to start",
        ),  # fmt: skip
        (
            "Session files: start / after",
            f"{base.session_files} / {after.session_files}",
            "back to start",
        ),  # fmt: skip
        (
            "Back to baseline after the sessions ended",
            f"{got.settle_seconds:.0f} s",
            "within 2 windows",
        ),  # fmt: skip
    ]


if __name__ == "__main__":
    run_alone("Soak", run)
