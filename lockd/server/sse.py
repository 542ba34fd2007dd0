"""Server-sent event streams, for the API's message stream and the dashboard's
nudges alike: one frame format, one keep-alive, one response shape."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from lockd.broker.events import Subscription

PING_SECONDS = 25.0


def frame(event: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


PING = b": ping\n\n"
SENT_WINDOW = 1000  # ids a stream remembers having sent


class SentIds:
    """The last SENT_WINDOW ids sent on one stream. A message can come twice (in
    the backlog and live, or re-pushed after a replica resync), and from other
    brokers out of id order, so a set rather than a high mark; a window rather
    than every id, so that a stream open for weeks holds a fixed ~100 KB, not
    one entry per message it ever carried (the client dedups older repeats)."""

    def __init__(self, window: int = SENT_WINDOW) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._window = window

    def first_time(self, message_id: str) -> bool:
        """True, and remembered, unless `message_id` is among the last sent."""
        if message_id in self._ids:
            return False
        if len(self._order) >= self._window:
            self._ids.discard(self._order.popleft())
        self._order.append(message_id)
        self._ids.add(message_id)
        return True


async def pinged(sub: Subscription) -> AsyncIterator[dict[str, Any] | None]:
    """A subscription's events, and None after each PING_SECONDS of quiet (send
    PING then, so clients and proxies keep the stream). Ends when the
    subscriber fell behind: the client reconnects and re-syncs."""
    while True:
        try:
            event = await asyncio.wait_for(sub.get(), PING_SECONDS)
        except TimeoutError:
            yield None
            continue
        if sub.overflowed:
            return
        yield event


def response(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
