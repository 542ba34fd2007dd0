"""Waiting for something another process does, with a deadline."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, step: float = 0.02) -> float:
    """Poll until true; the seconds it took (fails the test on timeout)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


async def until(
    predicate: Callable[[], object | Awaitable[object]], timeout: float = 5.0, step: float = 0.02
) -> float:
    """`wait_for` for async tests: yields to the event loop while it waits. The
    predicate may be a coroutine function (a tool call, a request), awaited each time."""
    import asyncio

    start = time.monotonic()
    while True:
        got = predicate()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
