"""Broker stream -> `notifications/claude/channel`.

Claude Code renders a channel notification as
`<channel source="lockd" from_id=… …>content</channel>`. Meta keys must be
identifiers (others are dropped silently by the client), values strings.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
from typing import Any, Literal

from mcp.types import Notification, NotificationParams

log = logging.getLogger("lockd.mcp.channel")
METHOD = "notifications/claude/channel"
CAPABILITY = "claude/channel"
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ChannelParams(NotificationParams):
    content: str
    meta: dict[str, str]


class ChannelNotification(Notification[ChannelParams, Literal["notifications/claude/channel"]]):
    method: Literal["notifications/claude/channel"] = METHOD


def render(message: dict[str, Any]) -> ChannelParams:
    sent = datetime.datetime.fromtimestamp(message["sent_at"], datetime.UTC)
    meta = {
        "from_id": message["from_id"],
        "from_name": message["from_name"],
        "message_id": message["message_id"],
        "sent_at": sent.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "kind": message.get("kind", "message"),
    }
    for key, value in (message.get("meta") or {}).items():
        if IDENT.match(key) and key not in meta:
            meta[key] = str(value)
    return ChannelParams(content=message["text"], meta=meta)


MODERN_ERA_NOTE = (
    "push is off: this client opened the 2026-07-28 protocol era, in which it takes no "
    "channel notifications; read messages with check_messages (or the inbox hook)"
)


class Channel:
    """Pushes each message once, after the client finished its handshake.

    `off` says why push cannot work for this session (None while it can);
    messages are then left unacknowledged, so they stay unread for
    `check_messages` and the inbox hook."""

    def __init__(self) -> None:
        self._session: Any = None
        self._ready = asyncio.Event()
        self._shown: set[str] = set()
        self.off: str | None = None

    def attach(self, session: Any) -> None:
        self._session = session
        self._ready.set()

    def disable(self, reason: str) -> None:
        if self.off is None:
            log.warning("%s", reason)
        self.off = reason
        self._ready.set()

    def shown(self, message_id: str) -> bool:
        return message_id in self._shown

    async def push(self, message: dict[str, Any]) -> bool:
        """Emit the notification; True once it is written (then the broker is acked)."""
        await self._ready.wait()
        if self.off is not None:
            return False
        mid = message["message_id"]
        if mid in self._shown:
            return True
        try:
            await self._session.send_notification(ChannelNotification(params=render(message)))
        except Exception:  # the client went away: leave it unacknowledged
            log.exception("could not push %s", mid)
            return False
        self._shown.add(mid)
        return True
