"""The broker's services, composed: the peer directory (peers.py), the
mailbox (messaging.py), intents (intents.py), other brokers' changes
(replication.py), the sweeper (liveness.py) and retention (retention.py),
with the dashboard bus they all publish to. Routes call this object; only
the services reach the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from lockd.broker.activity import ActivityBook
from lockd.broker.events import EventHub, Subscription
from lockd.broker.intents import IntentRegistry
from lockd.broker.liveness import STREAM_GRACE_SECONDS, Liveness
from lockd.broker.messaging import Mailbox
from lockd.broker.peers import NAME_RE, PeerDirectory, Registration
from lockd.broker.replication import Replica
from lockd.broker.retention import Retention
from lockd.core import feed
from lockd.core.errors import LockdError
from lockd.core.models import Message, Peer
from lockd.store.engine import Store
from lockd.store.tx import Clock

__all__ = ["DASHBOARD", "NAME_RE", "STREAM_GRACE_SECONDS", "Registration", "Registry"]
log = logging.getLogger("lockd.broker.registry")
DASHBOARD = "*dashboard*"


class Registry:
    def __init__(self, store: Store, hub: EventHub | None = None) -> None:
        self.store = store
        self.hub = hub or EventHub()
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # What the dashboard shows that the events table does not keep (messages,
        # joins): the last few, in memory only.
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)
        self.directory = PeerDirectory(store, self.publish_dashboard, self.later)
        self.mailbox = Mailbox(self.directory, self.hub, self.publish_dashboard)
        self.intents = IntentRegistry(self)
        self.activity = ActivityBook(self)  # in memory: it dies with each session
        self.replica = Replica(self.directory, self.mailbox, self.intents, self.publish_dashboard)
        self.liveness = Liveness(self.directory, self.mailbox, self.intents, self.publish_dashboard)
        self.liveness.on_gone = self.activity.forget
        self.retention = Retention(self.directory)
        self.started_at = self.clock()

    # ---- lifecycle -------------------------------------------------------
    async def start(self, sweep: bool = True) -> None:
        await self.directory.load()
        await self.intents.load()
        follow = getattr(self.store, "follow", None)
        if follow is not None:
            await follow(self.apply_change, self.resync)
        if sweep:
            self._sweeper = asyncio.create_task(self.liveness.sweep_forever(self.retention))

    def later(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run work the caller need not wait for (a git hook's notice to holders);
        failures go to the log, and `stop` lets pending work finish."""
        task = asyncio.create_task(work)
        self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background work failed", exc_info=t.exception())

        task.add_done_callback(done)

    async def stop(self) -> None:
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)
        if self._sweeper:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        try:
            await self.directory.flush_seen()
        except LockdError as exc:  # last heartbeats lost; stopping must not fail on it
            log.warning("last-seen times not saved: %s", exc.message)

    @property
    def clock(self) -> Clock:
        """The store's: the time peers, claims and the records they make all go by."""
        return self.store.clock

    @property
    def shared(self) -> bool:
        """Other brokers may write this store (PostgreSQL): memory can lag it."""
        return self.directory.shared

    @property
    def peers(self) -> dict[str, Peer]:
        return self.directory.peers

    @property
    def _streams(self) -> dict[str, int]:
        return self.mailbox.streams

    @property
    def on_users_changed(self) -> Callable[[], Awaitable[None]] | None:
        return self.replica.on_users_changed

    @on_users_changed.setter
    def on_users_changed(self, value: Callable[[], Awaitable[None]] | None) -> None:
        self.replica.on_users_changed = value

    # ---- the dashboard bus -----------------------------------------------
    def publish_dashboard(self, kind: str, **data: Any) -> None:
        event = {"type": kind, "at": self.clock(), **data}
        self.recent.append(event)
        self.hub.publish(DASHBOARD, event)

    # ---- what routes call, each one service's --------------------------------
    async def authenticate(self, credential: str | None) -> Peer:
        return await self.directory.authenticate(credential)

    async def register(self, reg: Registration) -> tuple[Peer, str]:
        return await self.directory.register(reg)

    async def lapse_report(self, peer: Peer) -> dict[str, Any] | None:
        return await self.directory.lapse_report(peer)

    def touch(self, peer: Peer) -> None:
        self.directory.touch(peer)

    async def revive(self, peer: Peer) -> None:
        await self.directory.revive(peer)

    async def unregister(self, peer: Peer) -> None:
        await self.liveness.mark_dead(peer, "goodbye")

    async def mark_dead(self, peer: Peer, cause: str, seen_before: float | None = None) -> bool:
        return await self.liveness.mark_dead(peer, cause, seen_before)

    def live_peers(self) -> list[Peer]:
        return self.directory.live_peers()

    def in_scope(self, scope: str, cwd: str, repo_id: str) -> list[Peer]:
        return self.directory.in_scope(scope, cwd, repo_id)

    async def set_summary(self, peer: Peer, summary: str) -> str:
        return await self.directory.set_summary(peer, summary)

    def find_peer(self, ref: str) -> Peer | None:
        return self.directory.find_peer(ref)

    async def lookup(self, ref: str) -> Peer | None:
        return await self.directory.lookup(ref)

    def name_of(self, peer_id: str) -> str | None:
        return self.directory.name_of(peer_id)

    async def send(
        self, sender: Peer, to: str, text: str, request_key: str | None = None
    ) -> tuple[Message, list[str]]:
        return await self.mailbox.send(sender, to, text, request_key)

    async def notice(self, recipients: list[str], text: str, **meta: str) -> Message | None:
        return await self.mailbox.notice(recipients, text, **meta)

    async def open_stream(self, peer: Peer) -> tuple[Subscription, list[Message]]:
        return await self.mailbox.open_stream(peer)

    async def close_stream(self, peer: Peer, sub: Subscription) -> None:
        await self.mailbox.close_stream(peer, sub)

    async def ack(self, peer: Peer, message_ids: list[str]) -> int:
        return await self.mailbox.ack(peer, message_ids)

    async def read_inbox(self, peer: Peer, mark_read: bool = True) -> list[Message]:
        return await self.mailbox.read_inbox(peer, mark_read)

    async def mark_read(self, peer: Peer, message_ids: list[str]) -> int:
        return await self.mailbox.mark_read(peer, message_ids)

    async def unread_count(self, peer: Peer) -> int:
        return await self.mailbox.unread_count(peer)

    async def history(self, limit: int = 100, repo_id: str | None = None) -> list[dict[str, Any]]:
        """Recorded claim events, newest first; the names of the peers they
        name are at hand (`name_of`), also of peers no longer in memory."""
        events = await self.store.read(lambda tx: tx.events(limit, repo_id))
        named = {e.get(k) for e in events for k in ("peer_id", "actor_id")}
        for event in events:
            holders = event["detail"].get("holders")
            named.update(holders if isinstance(holders, list) else ())
        await self.directory.recall_names({p for p in named if isinstance(p, str)})
        return events

    async def apply_change(self, change: feed.Change) -> None:
        await self.replica.apply_change(change)

    async def resync(self) -> None:
        await self.replica.resync()

    async def sweep(self) -> None:
        await self.liveness.sweep()
