"""Group commit, shared by both engines: every write is a job (a function of
a `Tx`); one writer task takes all jobs waiting, runs them on the store's one
database thread in one transaction (a SAVEPOINT per job, one COMMIT), and only
then answers each job and runs its after-commit callback, in commit order.
Under load many writes share one commit (one fsync) instead of each waiting
for its own; a failing job fails alone.

Both engines are DB-API and synchronous (sqlite3, psycopg 3), so a job runs
its statements back to back with no await between them, on one thread that
holds the one connection: reads and batches queue there in order."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from functools import partial
from queue import SimpleQueue
from typing import Any, TypeVar

from lockd.core.errors import LockdError
from lockd.store.tx import SQLITE, Clock, Dialect, Tx

T = TypeVar("T")
MAX_BATCH = 256
Job = tuple[Callable[[Tx], Any], "asyncio.Future[Any]", Callable[[Any], None] | None]


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if not future.done():  # the caller may have gone (cancelled)
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class DatabaseThread:
    """The one thread a store's connection is used from: it runs calls in the
    order they come, each answering the event loop that made it. (A thread
    and a queue rather than a one-thread executor: a third less per call.)"""

    def __init__(self, name: str) -> None:
        self._calls: SimpleQueue[tuple[asyncio.Future[Any], Callable[[], Any]] | None]
        self._calls = SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn = call
            try:
                ok, value = True, fn()
            except BaseException as exc:  # noqa: BLE001 - the caller's to handle
                ok, value = False, exc
            future.get_loop().call_soon_threadsafe(_settle, future, ok, value)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls.put((future, partial(fn, *args)))
        return await future

    def stop(self) -> None:
        """After the calls already queued."""
        self._calls.put(None)
        self._thread.join()


class GroupCommitStore:
    """The write path and the database thread. Engines supply, on that thread,
    the connection (`_connection`), how a write transaction begins (`_begin`)
    and is abandoned (`_rollback`), and which failures are the connection's
    rather than a job's (`_fails_batch`, `_unavailable`)."""

    dialect: Dialect = SQLITE
    origin: str | None = None  # this broker's replica id on a shared database (Tx.changed)

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._thread: DatabaseThread | None = None
        # The time every transaction (and the services over this store) records:
        # a test sets another before `open`, to run TTLs and leases in milliseconds.
        self.clock: Clock = time.time

    # ---- the engine's part (on the database thread) ----------------------
    def _connection(self) -> Any:
        raise NotImplementedError

    def _begin(self, conn: Any) -> None:
        raise NotImplementedError

    def _rollback(self, conn: Any) -> None:
        raise NotImplementedError

    def _fails_batch(self, conn: Any, exc: Exception) -> bool:
        """A job's failure that fails its whole batch (the connection is gone)."""
        return False

    def _unavailable(self, exc: Exception) -> LockdError | None:
        """What to tell callers instead of `exc`, when the database is unusable."""
        return None

    # ---- the database thread ---------------------------------------------
    def _start_thread(self, name: str) -> None:
        self._thread = DatabaseThread(name)

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            raise LockdError("unavailable", "the store is not open")
        return await self._thread.run(fn, *args)

    async def _stop_thread(self, last: Callable[[], None]) -> None:
        """Run `last` (closing the connection) on the thread, then end it."""
        if self._thread is not None:
            await self._on_thread(last)
            thread, self._thread = self._thread, None
            thread.stop()

    def _with_connection(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self._connection(), *args)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(connection, *args) on the database thread: one hop."""
        try:
            return await self._on_thread(self._with_connection, fn, *args)
        except Exception as exc:
            told = self._unavailable(exc)
            if told is None:
                raise
            raise told from None

    async def read(self, job: Callable[[Tx], T]) -> T:
        return await self._call(lambda conn: job(Tx(conn, self.dialect, clock=self.clock)))

    # ---- one batch: one transaction --------------------------------------
    def _run_batch(self, conn: Any, jobs: list[Callable[[Tx], Any]]) -> list[tuple[bool, Any]]:
        """On the database thread: the jobs in one transaction, one COMMIT."""
        try:
            self._begin(conn)
            outcomes = [self._run_job(conn, job) for job in jobs]
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        return outcomes

    def _run_job(self, conn: Any, job: Callable[[Tx], Any]) -> tuple[bool, Any]:
        """One job under its own SAVEPOINT, with a Tx of its own (what it
        changed is its own: `Tx.changes`): if it fails, its changes vanish and
        the others stand."""
        conn.execute("SAVEPOINT job")
        try:
            value = job(Tx(conn, self.dialect, self.origin, self.clock))
            conn.execute("RELEASE SAVEPOINT job")
        except Exception as exc:
            if self._fails_batch(conn, exc):
                raise
            conn.execute("ROLLBACK TO SAVEPOINT job")
            conn.execute("RELEASE SAVEPOINT job")
            return False, exc
        return True, value

    def _start_writer(self) -> None:
        self._writer = asyncio.create_task(self._write_forever())

    async def _stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    async def write(self, job: Callable[[Tx], T], after: Callable[[T], None] | None = None) -> T:
        """Run `job` in the next group commit; return once it is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future, after))
        return await future

    async def _write_forever(self) -> None:
        run_batch = self._run_batch
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await self._call(run_batch, [job for job, _, _ in batch])
            except Exception as exc:  # the commit itself failed: nobody's write stands
                for _, future, _ in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future, after), (ok, value) in zip(batch, outcomes, strict=True):
                if ok and after is not None:
                    after(value)  # even if the caller went away: the write stands
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
