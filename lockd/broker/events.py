"""Per-peer wake-ups for pushed delivery, and one bus for watchers (dashboard).

The registry publishes *after* the store commits, so anything a stream sees is
already durable. Queues are unbounded on purpose: a slow stream's backlog is
also in the database, and a stream that falls far behind is dropped and
re-syncs from the store on reconnect.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

MAX_BACKLOG = 10_000


class Subscription:
    def __init__(self, hub: EventHub, key: str) -> None:
        self.hub = hub
        self.key = key
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.overflowed = False

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self.hub._subs[self.key].discard(self)
        if not self.hub._subs[self.key]:
            del self.hub._subs[self.key]


class EventHub:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, key: str) -> Subscription:
        sub = Subscription(self, key)
        self._subs[key].add(sub)
        return sub

    def publish(self, key: str, event: dict[str, Any]) -> None:
        for sub in list(self._subs.get(key, ())):
            if sub.queue.qsize() >= MAX_BACKLOG:
                sub.overflowed = True
                continue
            sub.queue.put_nowait(event)

    def count(self, key: str) -> int:
        return len(self._subs.get(key, ()))
