"""Messages: resolving who a send goes to, storing it, pushing it to the
recipients' streams, inboxes and acknowledgements.

Every message is one store job (one transaction); wake-ups are published by
the job's after-commit callback, which the store's single writer runs in
commit order, so streams see messages durably stored and in order.
"""

from __future__ import annotations

from typing import Any

from lockd.broker.events import EventHub, Subscription
from lockd.broker.peers import PeerDirectory, Publish
from lockd.core.errors import LockdError, invalid
from lockd.core.models import BROADCASTS, Message, Peer, parse_key
from lockd.local import config
from lockd.store.tx import Tx


class Mailbox:
    def __init__(self, directory: PeerDirectory, hub: EventHub, publish: Publish) -> None:
        self.directory = directory
        self.store = directory.store
        self.hub = hub
        self.publish = publish
        self.streams: dict[str, int] = {}  # peer id -> streams open here
        self.closed_at: dict[str, float] = {}  # peer id -> when its last stream closed

    async def resolve_recipients(self, sender: Peer, to: str) -> list[str]:
        to = to.strip()
        if to in BROADCASTS:
            peers = self.directory.in_scope(BROADCASTS[to], sender.cwd, sender.repo_id)
            found = [p.peer_id for p in peers if p.peer_id != sender.peer_id]
            if not found:  # stored for nobody, it would never be read: say so instead
                raise LockdError(
                    "not_found",
                    f"nobody else is live in {to} right now: nothing was sent",
                    next="see {peers} for who is there",
                )
            return found
        if to.startswith("@"):
            raise invalid(f"to={to!r}: broadcasts are {', '.join(BROADCASTS)}")
        peer = await self.directory.lookup(to)
        if peer is None:
            raise LockdError(
                "not_found", f"no peer with id or name {to!r}", next="see {peers} for who is there"
            )
        if peer.peer_id == sender.peer_id:
            raise invalid(
                f"{to!r} is you: a peer cannot send a message to itself",
                next="see {peers} for who else is there",
            )
        return [peer.peer_id]

    async def send(
        self, sender: Peer, to: str, text: str, request_key: str | None = None
    ) -> tuple[Message, list[str]]:
        if not text.strip():
            raise invalid("message is empty: say something")
        size = len(text.encode())
        if size > config.MAX_MESSAGE_BYTES:
            raise LockdError(
                "too_large",
                f"message is {size} bytes; the limit is {config.MAX_MESSAGE_BYTES} bytes",
            )
        recipients = await self.resolve_recipients(sender, to)
        meta = {"from_summary": sender.summary[:200]} if sender.summary else {}
        message, recipients = await self._deliver(
            recipients, to, text, sender=sender, meta=meta, request_key=request_key
        )
        self.publish(
            "message",
            from_id=sender.peer_id,
            from_name=sender.name,
            to=to,
            recipients=recipients,
            message_id=message.message_id,
        )
        return message, recipients

    async def notice(self, recipients: list[str], text: str, **meta: str) -> Message | None:
        """A message from lockd itself (claim refused, force-released, free now…)."""
        recipients = [r for r in recipients if r in self.directory.peers]
        if not recipients:
            return None
        message, _ = await self._deliver(recipients, "notice", text, sender=None, meta=meta)
        return message

    async def _deliver(
        self,
        recipients: list[str],
        to: str,
        text: str,
        sender: Peer | None,
        meta: dict[str, str],
        request_key: str | None = None,
    ) -> tuple[Message, list[str]]:
        """Stored, then pushed. A send whose request key this sender used
        before is that earlier message (a retry): stored once, pushed again,
        which streams and sessions skip by id."""
        sid, sname = (sender.peer_id, sender.name) if sender else ("lockd", "lockd")
        kind = "message" if sender else "system"

        def job(tx: Tx) -> tuple[Message, list[str]]:
            if request_key is not None:
                earlier = tx.sent_before(sid, request_key)
                if earlier is not None:
                    return earlier
            message = tx.insert_message(sid, sname, to, text, recipients, kind, meta, request_key)
            return message, recipients

        return await self.store.write(job, after=lambda r: self.push(r[0].as_dict(), r[1]))

    def push(self, message: dict[str, Any], recipients: list[str]) -> None:
        """To the recipients' streams held here (each skips an id it has sent)."""
        event = {"type": "message", "message": message}
        for rid in recipients:
            self.hub.publish(rid, event)

    # ---- streams ---------------------------------------------------------
    async def open_stream(self, peer: Peer) -> tuple[Subscription, list[Message]]:
        """Subscribe first, then read the backlog, so nothing falls in between."""
        sub = self.hub.subscribe(peer.peer_id)
        self.streams[peer.peer_id] = self.streams.get(peer.peer_id, 0) + 1
        await self.directory.revive(peer)
        self.directory.touch(peer)
        backlog = await self.store.read(lambda tx: tx.undelivered(peer.peer_id))
        return sub, backlog

    async def close_stream(self, peer: Peer, sub: Subscription) -> None:
        sub.close()
        left = self.streams.get(peer.peer_id, 1) - 1
        if left <= 0:
            # The sweeper decides after a short grace, so a session that reconnects
            # at once (a new MCP server for the same agent) keeps its claims.
            self.streams.pop(peer.peer_id, None)
            self.closed_at[peer.peer_id] = self.directory.clock()
        else:
            self.streams[peer.peer_id] = left

    # ---- inboxes ---------------------------------------------------------
    async def ack(self, peer: Peer, message_ids: list[str]) -> int:
        ids = _message_ids(message_ids)
        return await self.store.write(lambda tx: tx.mark(peer.peer_id, ids, "delivered_at"))

    async def read_inbox(self, peer: Peer, mark_read: bool = True) -> list[Message]:
        def job(tx: Tx) -> list[Message]:
            messages = tx.unread(peer.peer_id)
            if mark_read and messages:
                tx.mark(peer.peer_id, [int(m.message_id[1:]) for m in messages], "read_at")
            return messages

        return await self.store.write(job)

    async def mark_read(self, peer: Peer, message_ids: list[str]) -> int:
        ids = _message_ids(message_ids)
        return await self.store.write(lambda tx: tx.mark(peer.peer_id, ids, "read_at"))

    async def unread_count(self, peer: Peer) -> int:
        return await self.store.read(lambda tx: tx.unread_count(peer.peer_id))


def _message_ids(raw: list[str]) -> list[int]:
    ids = []
    for item in raw:
        n = parse_key(str(item), "m")
        if n is None:
            raise invalid(f"message id {item!r} is not of the form m123")
        ids.append(n)
    return ids
