"""Liveness: the sweeper that declares peers gone (lease lapsed, process
gone, stream closed), releases their claims, expires TTLs and runs the
store's upkeep."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from lockd.broker.intents import IntentRegistry
from lockd.broker.messaging import Mailbox
from lockd.broker.peers import PeerDirectory, Publish
from lockd.broker.retention import Retention
from lockd.broker.service import PeerService
from lockd.core import lapse
from lockd.core.errors import LockdError
from lockd.core.models import Peer
from lockd.local import config, processes

log = logging.getLogger("lockd.broker.registry")
STREAM_GRACE_SECONDS = 0.5  # a session may reconnect this fast and keep its claims


class Liveness(PeerService):
    def __init__(
        self, directory: PeerDirectory, mailbox: Mailbox, intents: IntentRegistry, publish: Publish
    ) -> None:
        super().__init__(directory, mailbox, intents, publish)
        self.on_gone: Callable[[str], None] | None = None  # what else a gone peer ends

    async def mark_dead(self, peer: Peer, cause: str, seen_before: float | None = None) -> bool:
        """Dead, and its claims released, in one transaction. With `seen_before`,
        only if the database agrees it was not seen since (another broker on a
        shared database may have had its heartbeats); False if not done."""
        if not peer.alive:
            return False
        released = await self.intents.release_all_of(
            peer, first=lambda tx: tx.mark_gone(peer.peer_id, seen_before), why=cause
        )
        if released is None:
            return False
        peer.alive = False
        if self.on_gone is not None:
            self.on_gone(peer.peer_id)
        log.info("peer %s (%s) is gone: %s", peer.peer_id, peer.name, cause)
        self.publish("peer_left", peer=peer.public(), cause=cause)
        if released and cause != lapse.GOODBYE:  # waits in its inbox for its return
            at = self.directory.clock()
            await self.mailbox.notice(
                [peer.peer_id],
                lapse.notice_text(released, cause, at, config.lease_seconds()),
                event="claims_released",
                cause=cause,
                intent_ids=",".join(i.intent_id for i in released),
                released_at=f"{at:.3f}",
            )
        await self.intents.wake_watchers({i.repo_id for i in released})
        return True

    def _process_gone(self, peer: Peer) -> bool:
        """Only a process on this machine can be checked; others rely on the lease."""
        if peer.kind != "agent" or peer.host != self.directory.host or peer.pid is None:
            return False
        return not processes.is_alive(peer.pid, peer.pid_start)

    async def sweep(self) -> None:
        now = self.directory.clock()
        lease = config.lease_seconds()
        live = self.directory.live_peers
        if self.directory.shared:
            await self.directory.refresh_seen([p for p in live() if now - p.last_seen > lease])
        for peer in live():
            if peer.kind != "agent":
                continue
            if now - peer.last_seen > lease:
                await self.mark_dead(peer, "heartbeats stopped", seen_before=now - lease)
            elif (
                peer.peer_id not in self.mailbox.streams
                and now - self.mailbox.closed_at.get(peer.peer_id, 0.0) >= STREAM_GRACE_SECONDS
                and self._process_gone(peer)
            ):
                self.mailbox.closed_at.pop(peer.peer_id, None)
                await self.mark_dead(peer, "process gone")
        await self.intents.expire(now)
        await self.directory.flush_seen()
        self.forget()

    def forget(self) -> None:
        """Gone peers leave memory once nothing here refers to them."""

        def keep() -> set[str]:
            return {i.peer_id for i in self.intents.all_live()} | set(self.mailbox.streams)

        for peer_id in self.directory.forget(keep):
            self.mailbox.closed_at.pop(peer_id, None)

    async def sweep_forever(self, retention: Retention) -> None:
        refused = ""  # the store's refusal, logged once rather than every second
        while True:
            await asyncio.sleep(config.SWEEP_SECONDS)
            try:
                await self.sweep()
                if retention.due(self.directory.clock()):
                    await retention.run()
            except LockdError as exc:  # the store refuses writes (locked, or its file lost)
                if exc.message != refused:
                    log.warning("sweep skipped: %s", exc.message)
                refused = exc.message
            except Exception:  # the sweeper must outlive any one bad sweep
                log.exception("sweep failed")
            else:
                refused = ""
