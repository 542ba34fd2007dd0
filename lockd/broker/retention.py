"""Retention: what the store keeps, bounded by time. Released and expired
intents and their events go after LOCKD_RETENTION_DAYS; gone peers with
nothing unread after LOCKD_PEER_RETENTION_DAYS, with their session files;
read or acknowledged messages after LOCKD_MESSAGE_RETENTION_DAYS (and a
gone peer with messages it never saw, after that too). Then the freed space goes back
to the filesystem (SQLite's incremental vacuum; VACUUM on PostgreSQL), all
without stopping the broker."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lockd.broker.peers import PeerDirectory
from lockd.core import memo
from lockd.local import config, processes, sessions
from lockd.store.tx import Tx

log = logging.getLogger("lockd.broker.retention")
DAY = 86400.0


class Retention:
    def __init__(self, directory: PeerDirectory) -> None:
        self.directory = directory
        self.store = directory.store
        self.last_run: dict[str, Any] | None = None  # when it ran and what it removed

    def due(self, now: float) -> bool:
        last = self.last_run["at"] if self.last_run else 0.0
        return now - last >= config.retention_every_seconds()

    async def run(self) -> dict[str, Any]:
        """One pass; what it removed, also kept for `lockd status`."""
        now = self.directory.clock()
        records_before = now - config.retention_days() * DAY
        peers_before = now - config.peer_retention_days() * DAY
        messages_before = now - config.message_retention_days() * DAY

        def job(tx: Tx) -> dict[str, Any]:
            done = tx.compact(records_before, peers_before, messages_before)
            done["messages"] = tx.purge_messages(messages_before)
            return done

        done = await self.store.write(job)
        purged = done.pop("peers")
        self.directory.purged(purged)
        files = 0
        if not self.directory.shared:  # the sessions of a broker on this machine
            if purged:
                files = await asyncio.to_thread(sessions.remove_sessions_of, set(purged))
            files += await self._remove_orphans(peers_before)
        await self.store.reclaim()
        self.last_run = {
            "at": now,
            "took_seconds": round(self.directory.clock() - now, 3),
            "removed": {**done, "peers": len(purged), "session_files": files},
        }
        if purged or any(done.values()):
            log.info("retention removed %s", self.last_run["removed"])
        return self.last_run

    async def _remove_orphans(self, before: float) -> int:
        """Session files no peer of this store owns, untouched since `before`
        (the peers' window): an agent killed before it registered leaves an
        empty one, and a peer purged while its session still held its file
        leaves one naming it. No running session's file is touched."""
        named = sorted(await asyncio.to_thread(sessions.session_peer_ids))
        known = set(await self.store.read(lambda tx: tx.peer_names(named)))

        def orphan(data: dict[str, Any], mtime: float) -> bool:
            return mtime < before and data.get("peer_id") not in known

        return await asyncio.to_thread(sessions.remove_sessions, orphan)

    async def report(self) -> dict[str, Any]:
        """The store's size and rows by kind, the caches' memory, the last run."""
        usage = await self.store.usage()
        rows = await self.store.read(lambda tx: tx.row_counts())
        caches = memo.usage()
        return {
            "store": {"path": self.store.path, **usage, "rows": rows},
            "caches": {
                "bytes": sum(c["bytes"] for c in caches.values()),
                "budget": sum(c["budget"] for c in caches.values()),
                "entries": sum(c["entries"] for c in caches.values()),
            },
            "memory": {
                **self.directory.sizes(),
                "resident_bytes": processes.resident_bytes(),
                **await self.store.memory(),
            },
            "retention": {
                "last_run": self.last_run,
                "every_seconds": config.retention_every_seconds(),
                "records_days": config.retention_days(),
                "peers_days": config.peer_retention_days(),
                "messages_days": config.message_retention_days(),
            },
        }
