"""Server-sent event streams, for the API's message stream and the dashboard's
nudges alike: one frame format, one keep-alive, one response shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from lockd.broker.events import Subscription

PING_SECONDS = 25.0


def frame(event: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


PING = b": ping\n\n"


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
