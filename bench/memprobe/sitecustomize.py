"""A memory probe for the broker under a soak (`bench/bench_soak.py --probe DIR`):
Python imports this `sitecustomize` at start-up when its folder is on
PYTHONPATH; inside a `lockd serve` process (and nowhere else) it appends a line
every LOCKD_PROBE_EVERY seconds to LOCKD_PROBE_DIR/memory.log with what each
allocator holds, so that RSS growth can be told apart: Python's objects
(pymalloc's arenas and the bytes in their blocks), C's malloc (in use and
free), SQLite's own allocator, threads. With LOCKD_PROBE_TRACE=1 it also
starts tracemalloc after LOCKD_PROBE_DELAY seconds (past start-up, which
tracing slows) and dumps a snapshot with each line, for
`tracemalloc.Snapshot.load(a).compare_to(...)`.

glibc only (mallinfo2); a diagnostic, never installed with lockd."""

import os
import sys

_DIR = os.environ.get("LOCKD_PROBE_DIR")
if _DIR and "serve" in sys.orig_argv:
    import ctypes
    import threading
    import time
    import tracemalloc

    class _MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
            )
        ]  # fmt: skip

    def _pymalloc() -> dict[str, str]:
        """pymalloc's own figures: sys._debugmallocstats writes them to fd 2."""
        path = os.path.join(_DIR, "pymalloc.tmp")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        saved = os.dup(2)
        try:
            os.dup2(fd, 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(fd)
        wanted = {
            "# arenas allocated current": "arenas",
            "# bytes in allocated blocks": "py_blocks",
        }
        out = {}
        with open(path) as fh:
            for line in fh:
                for head, key in wanted.items():
                    if line.startswith(head):
                        out[key] = line.split("=")[-1].strip().replace(",", "")
        return out

    def _probe() -> None:
        import _sqlite3

        import psutil

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        sqlite_used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
        sqlite_used.restype = ctypes.c_int64
        every = float(os.environ.get("LOCKD_PROBE_EVERY", "30"))
        trace = os.environ.get("LOCKD_PROBE_TRACE") == "1"
        t0, n = time.monotonic(), 0
        if trace:
            time.sleep(float(os.environ.get("LOCKD_PROBE_DELAY", "20")))
            tracemalloc.start(8)
        while True:
            time.sleep(every)
            n += 1
            if trace:
                tracemalloc.take_snapshot().dump(os.path.join(_DIR, f"snap-{n:03d}.pickle"))
            mi, rss = libc.mallinfo2(), psutil.Process().memory_info().rss
            figures = {
                "rss_mib": f"{rss / 2**20:.2f}",
                "sqlite_mib": f"{sqlite_used() / 2**20:.3f}",
                "malloc_inuse_mib": f"{mi.uordblks / 2**20:.2f}",
                "malloc_free_mib": f"{mi.fordblks / 2**20:.2f}",
                "traced_mib": f"{tracemalloc.get_traced_memory()[0] / 2**20:.3f}",
                "threads": str(threading.active_count()),
                **_pymalloc(),
            }
            with open(os.path.join(_DIR, "memory.log"), "a") as fh:
                line = " ".join(f"{k}={v}" for k, v in figures.items())
                fh.write(f"{time.monotonic() - t0:6.0f}s {line}\n")

    threading.Thread(target=_probe, name="lockd-memprobe", daemon=True).start()
