"""The SQLite store: one connection (aiosqlite, WAL), one writer, group commit.

Every write is a job (a function of a `Tx`). One writer task takes all jobs
waiting, runs them in a single transaction on the connection's thread, each
under its own SAVEPOINT so a failing job changes nothing and fails alone,
then COMMITs once with `synchronous=FULL` (fsync) and only then answers each
job and runs its after-commit callback in commit order. So: an acknowledged
write is on disk; the broker never contends with itself for the database; and
under load many writes share one fsync instead of queueing behind one each.

Only another process can hold the database locked (an open sqlite3 shell, a
backup): a batch waits BUSY_TIMEOUT_SECONDS for it, then its requests fail
with a clear `unavailable` (503). Short enough that even a job queued behind
a waiting batch gets that answer before a client's own 5 s timeout, which
would misreport a running broker as unreachable and leave the write's fate
unknown to the caller.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from lockd.errors import LockdError
from lockd.store.group import GroupCommitStore
from lockd.store.schema import MIGRATIONS, pending
from lockd.store.tx import Tx

T = TypeVar("T")
BUSY_TIMEOUT_SECONDS = 2.0


def _run_batch(conn: sqlite3.Connection, jobs: list[Callable[[Tx], Any]]) -> list[tuple[bool, Any]]:
    tx = Tx(conn)
    conn.execute("BEGIN IMMEDIATE")
    outcomes: list[tuple[bool, Any]] = []
    try:
        for job in jobs:
            conn.execute("SAVEPOINT job")
            try:
                outcomes.append((True, job(tx)))
                conn.execute("RELEASE job")
            except Exception as exc:  # this job's changes vanish; the others stand
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((False, exc))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _migrate(conn: sqlite3.Connection, path: str) -> None:
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


class SqliteStore(GroupCommitStore):
    _run_batch = staticmethod(_run_batch)

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        db = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
        db.row_factory = sqlite3.Row
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            f"busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}",
        ):
            await db.execute(f"PRAGMA {pragma}")
        self._db = db
        try:
            await self._call(_migrate, self.path)
        except BaseException:  # a refused database must not leave aiosqlite's thread running
            self._db = None
            await db.close()
            raise
        self._start_writer()

    async def close(self) -> None:
        await self._stop_writer()
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(connection, *args) on the connection's own thread: one hop."""
        if self._db is None:
            raise LockdError("unavailable", "the store is not open")
        db = self._db
        try:
            return await db._execute(lambda: fn(db._conn, *args))  # type: ignore[no-any-return]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise LockdError(
                "unavailable",
                f"the database {self.path} is locked by another process (waited "
                f"{BUSY_TIMEOUT_SECONDS:g} s): try again; if it lasts, close whatever holds it "
                "(an open sqlite3 shell, a backup)",
            ) from None

    async def read(self, job: Callable[[Tx], T]) -> T:
        return await self._call(lambda conn: job(Tx(conn)))
