"""Group commit, shared by both engines: every write is a job (a function of
a `Tx`); one writer task takes all jobs waiting, hands them to the engine's
`_run_batch` (one transaction, a SAVEPOINT per job, one COMMIT), and only
then answers each job and runs its after-commit callback, in commit order.
Under load many writes share one commit (one fsync) instead of each waiting
for its own; a failing job fails alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from lockd.store.tx import Tx

T = TypeVar("T")
MAX_BATCH = 256
Job = tuple[Callable[[Tx], Any], "asyncio.Future[Any]", Callable[[Any], None] | None]


class GroupCommitStore:
    """The write path; engines supply `_call(fn, *args)`, which runs
    fn(connection, *args) on their one database thread, and `_run_batch`."""

    _run_batch: Callable[..., list[tuple[bool, Any]]]

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

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
