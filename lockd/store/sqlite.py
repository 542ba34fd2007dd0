"""The SQLite store: one sqlite3 connection (WAL) on the store's own thread,
one writer, group commit.

Every write is a job (a function of a `Tx`). One writer task takes all jobs
waiting, runs them in a single transaction on the store's thread, each under
its own SAVEPOINT so a failing job changes nothing and fails alone, then
COMMITs once with `synchronous=FULL` (fsync) and only then answers each job
and runs its after-commit callback in commit order (lockd/store/group.py).
So: an acknowledged write is on disk; the broker never contends with itself
for the database; and under load many writes share one fsync instead of
queueing behind one each.

Why a plain sqlite3 connection on a thread of the store's own, not aiosqlite:
a job is a synchronous function that runs many statements back to back, and
aiosqlite's public API runs one statement per await; running a whole job on
its thread needs its private `_execute`/`_conn`. So the store keeps what
aiosqlite would have given it, a connection used from one thread only (group.py
DatabaseThread), the same way PostgresStore keeps its psycopg connection.

Only another process can hold the database locked (an open sqlite3 shell, a
backup): a batch waits BUSY_TIMEOUT_SECONDS for it, then its requests fail
with a clear `unavailable` (503). Short enough that even a job queued behind
a waiting batch gets that answer before a client's own 5 s timeout, which
would misreport a running broker as unreachable and leave the write's fate
unknown to the caller.

The store watches its file. Deleting or replacing the database (and its -wal)
under a running broker does not stop SQLite: it keeps writing the file it has
open, now unlinked, and everything written since is gone at the next start.
So every batch, before BEGIN and again after COMMIT, compares the device and
inode of the path with those of the file opened (one stat each, a few
microseconds); on a mismatch the batch's writes are not acknowledged and
every later one is refused: `unavailable` (503) naming the file and the next
step, and one line in the log.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lockd.core.errors import LockdError
from lockd.store.group import GroupCommitStore
from lockd.store.schema import MIGRATIONS, pending
from lockd.store.tx import Tx

log = logging.getLogger("lockd.store")
BUSY_TIMEOUT_SECONDS = 2.0
# SQLite's page cache, its own memory beside Python's: explicit, so the broker's
# memory has a stated bound (the size of SQLite's default). It fills over the
# first minutes of work, then stays; the OS's file cache serves what it drops.
PAGE_CACHE_KIB = 2048
PRAGMAS = (
    # Before WAL: a new database takes it only then. Retention's deletes give
    # their pages back to the filesystem (`reclaim`) without stopping the broker.
    "auto_vacuum=INCREMENTAL",
    "journal_mode=WAL",
    "synchronous=FULL",  # COMMIT returns once the WAL is on disk: acknowledged means durable
    "foreign_keys=ON",
    f"busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}",
    f"cache_size=-{PAGE_CACHE_KIB}",  # negative: KiB, not pages
)
FileId = tuple[int, int] | None  # (st_dev, st_ino); None: no such file


def _file_id(path: str) -> FileId:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _connect(path: str) -> sqlite3.Connection:
    """On the store's thread, which alone uses the connection from then on."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
    conn.row_factory = sqlite3.Row
    try:
        for pragma in PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
    except BaseException:
        conn.close()
        raise
    return conn


INCREMENTAL = 2  # PRAGMA auto_vacuum's answer for INCREMENTAL


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    if mode != INCREMENTAL:  # made before lockd set it: one VACUUM switches it, once
        log.warning("converting %s to incremental vacuum (once; may take a while)", path)
        conn.execute("VACUUM")
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    for number, statements in pending(version, MIGRATIONS, path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _reclaim(conn: sqlite3.Connection) -> None:
    # executescript steps the pragma to its end; execute() frees one page only.
    conn.executescript("PRAGMA incremental_vacuum;")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _usage(conn: sqlite3.Connection, path: str) -> dict[str, int]:
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    return {"bytes": _size(path) + _size(path + "-wal"), "free_bytes": free * page_size}


@functools.cache
def _memory_used() -> Callable[[], int] | None:
    """SQLite's count of the bytes its allocator holds (page cache, prepared
    statements, schema), through the library Python's sqlite3 module runs on:
    tracemalloc and the pattern caches' budget never see that memory. None
    where the library does not export it."""
    try:
        import _sqlite3

        fn = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
    except (ImportError, OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [], ctypes.c_int64
    return fn


def _memory() -> dict[str, int]:
    used = _memory_used()
    return {
        "engine_bytes": used() if used is not None else -1,
        "page_cache_cap_bytes": PAGE_CACHE_KIB * 1024,
    }


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


class SqliteStore(GroupCommitStore):
    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = str(path)
        self._conn: sqlite3.Connection | None = None
        self._files: dict[str, FileId] = {}  # the database and its -wal, as opened
        self.lost: str | None = None  # why writes are refused, once the file is gone

    # ---- the engine's part of group commit (lockd/store/group.py) ---------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LockdError("unavailable", "the store is not open")
        return self._conn

    def _begin(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _unavailable(self, exc: Exception) -> LockdError | None:
        if not isinstance(exc, sqlite3.OperationalError):
            return None
        if "locked" not in str(exc) and "busy" not in str(exc):
            return None
        return LockdError(
            "unavailable",
            f"the database {self.path} is locked by another process (waited "
            f"{BUSY_TIMEOUT_SECONDS:g} s): try again; if it lasts, close whatever holds it "
            "(an open sqlite3 shell, a backup)",
        )

    def _run_batch(self, conn: sqlite3.Connection, jobs: list[Callable[[Tx], Any]]) -> Any:
        self._check_file()
        outcomes = super()._run_batch(conn, jobs)
        self._check_file()  # deleted meanwhile: committed to a file nobody will open again
        return outcomes

    def _remember_files(self) -> None:
        self._files = {p: _file_id(p) for p in (self.path, self.path + "-wal")}

    def _check_file(self) -> None:
        """Refuse to acknowledge writes once the path is no longer the file open."""
        if self.lost is None:
            for path, opened in self._files.items():
                now = _file_id(path)
                if opened is None and path != self.path:
                    self._files[path] = now  # the -wal, created since the open
                elif now != opened:
                    what = "deleted" if now is None else "replaced by another file"
                    self.lost = (
                        f"the database {path} was {what} while the broker ran: writes are "
                        "refused so that none is acknowledged and then lost. Restart the "
                        "broker (`lockd stop`; the next session or command starts it) to "
                        "open the database at that path; restore it from a backup first "
                        "if you need what it held"
                    )
                    log.error("%s", self.lost)
                    break
        if self.lost is not None:
            raise LockdError("unavailable", self.lost)

    async def open(self) -> None:
        self._start_thread("lockd-sqlite")
        try:
            self._conn = await self._on_thread(_connect, self.path)
            await self._call(_migrate, self.path)
            self._remember_files()
        except BaseException:  # a refused database must not leave its thread running
            await self._stop_thread(self._disconnect)
            raise
        self._start_writer()

    async def reclaim(self) -> None:
        """Give free pages back to the filesystem, and empty the WAL: between
        batches, on the store's thread (retention calls it after deleting)."""
        await self._call(_reclaim)

    async def usage(self) -> dict[str, int]:
        """Bytes the database takes on disk (with its WAL), and how many of
        them are free pages waiting for `reclaim`."""
        return await self._call(_usage, self.path)

    async def memory(self) -> dict[str, int]:
        """SQLite's own memory in this process (-1: not known) and its page cache's cap."""
        return _memory()

    async def close(self) -> None:
        await self._stop_writer()
        await self._stop_thread(self._disconnect)

    def _disconnect(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
