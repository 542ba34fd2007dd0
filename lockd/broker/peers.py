"""The peer directory: who is registered, by id, name and credential; leases
renewed by every call; names kept unique. Memory in front of the store's
`peers` table: every change is written first, then applied to the objects
requests already hold.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import socket
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from lockd.core import lapse
from lockd.core.digest import secret_hash
from lockd.core.errors import LockdError, invalid
from lockd.core.models import LOCAL_USER, SCOPES, Peer
from lockd.local import config
from lockd.store.engine import Store
from lockd.store.tx import Tx

log = logging.getLogger("lockd.broker.registry")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$")
KNOWN_NAMES = 10_000  # names of forgotten peers kept for the dashboard's history
Publish = Callable[..., None]  # the dashboard bus: publish(kind, **data)
Later = Callable[[Coroutine[Any, Any, Any]], None]  # run work nobody waits for


@dataclass
class Registration:
    cwd: str
    repo_id: str
    repo_root: str
    client: str = "unknown"
    kind: str = "agent"
    name: str | None = None
    summary: str = ""
    pid: int | None = None
    pid_start: float | None = None
    agent_pid: int | None = None
    agent_start: float | None = None
    host: str | None = None
    credential: str | None = None
    user: str = LOCAL_USER  # whose token registers it (lockd/accounts.py)


class PeerDirectory:
    def __init__(self, store: Store, publish: Publish, later: Later) -> None:
        self.store = store
        self.publish = publish
        self.later = later
        self.host = socket.gethostname()
        self.peers: dict[str, Peer] = {}
        self._by_credential: dict[str, str] = {}
        self._pending_seen: dict[str, float] = {}
        # Peers declared gone that came back, and when they were last seen before:
        # their next register, heartbeat or whoami answer says what they missed.
        self._returned: dict[str, float] = {}
        self.name_hold = config.name_hold_seconds()
        self._registering = asyncio.Lock()
        self._names: OrderedDict[str, str] = OrderedDict()  # forgotten peers' names

    @property
    def shared(self) -> bool:
        """Other brokers may write this store (PostgreSQL): memory can lag it."""
        return bool(getattr(self.store, "shared", False))

    def clock(self) -> float:
        return self.store.clock()

    async def load(self) -> None:
        """The database's live peers, at start, with a fresh lease to reconnect;
        gone ones are read back when they return or are named."""
        for peer, credential_hash in await self.store.read(lambda tx: tx.load_peers(alive=True)):
            self.peers[peer.peer_id] = peer
            self._by_credential[credential_hash] = peer.peer_id
            if peer.alive:  # give sessions a fresh lease to reconnect after a restart
                peer.last_seen = max(peer.last_seen, self.clock() - config.lease_seconds() / 2)

    # ---- credentials -----------------------------------------------------
    async def authenticate(self, credential: str | None) -> Peer:
        if not credential:
            raise LockdError(
                "unauthorized",
                "this call needs a session credential (header X-Lockd-Session): register first",
            )
        peer_id = await self._peer_id_of(credential)
        if peer_id is None:
            raise LockdError("forbidden", "unknown session credential: register again")
        return self.peers[peer_id]

    async def _peer_id_of(self, credential: str) -> str | None:
        """Whose credential this is: memory, else the database (a peer gone long
        enough to be forgotten here, or registered through another broker
        before its notice came)."""
        hashed = secret_hash(credential)
        peer_id = self._by_credential.get(hashed)
        if peer_id is None:
            found = await self.store.read(lambda tx: tx.peer_by_credential(hashed))
            if found is not None:
                peer_id = self.remember(*found).peer_id
        return peer_id

    def remember(self, peer: Peer, credential_hash: str) -> Peer:
        """Take a peer row read from the database into memory, updating in place
        the object requests already hold; the newer last_seen wins."""
        known = self.peers.get(peer.peer_id)
        was_alive = known is not None and known.alive
        if known is None:
            self.peers[peer.peer_id] = known = peer
        else:
            seen = known.last_seen
            known.__dict__.update(peer.__dict__)
            known.last_seen = max(seen, peer.last_seen)
        if was_alive != known.alive:  # the dashboard here shows it, as if it happened here
            kind = "peer_joined" if known.alive else "peer_left"
            self.publish(kind, peer=known.public(), cause="through another broker")
        for old in [h for h, pid in self._by_credential.items() if pid == peer.peer_id]:
            del self._by_credential[old]
        self._by_credential[credential_hash] = peer.peer_id
        return known

    async def refresh_seen(self, peers: list[Peer]) -> None:
        """Heartbeats may have reached another broker: take the database's last_seen."""
        if not peers:
            return
        ids = [p.peer_id for p in peers]
        seen = await self.store.read(lambda tx: tx.last_seen(ids))
        for peer in peers:
            peer.last_seen = max(peer.last_seen, seen.get(peer.peer_id, 0.0))

    # ---- registering -----------------------------------------------------
    def _unique_name(self, tx: Tx, wanted: str, peer_id: str) -> str:
        """`wanted`, or `wanted-2`... if another peer holds it: a live one, or
        one gone less than LOCKD_NAME_HOLD_SECONDS ago, whose name waits for it
        (messages to that name go to its inbox, and it gets the name back).
        Gone peers may be in the database only: both are asked, in the
        registering transaction."""
        held_since = self.clock() - self.name_hold
        taken = {
            p.name
            for p in self.peers.values()
            if p.peer_id != peer_id and (p.alive or p.last_seen > held_since)
        }
        taken |= tx.names_held(wanted, peer_id, held_since)
        name, n = wanted, 2
        while name in taken:
            name, n = f"{wanted}-{n}", n + 1
        return name

    async def register(self, reg: Registration) -> tuple[Peer, str]:
        if reg.kind not in ("agent", "person"):
            raise invalid(f"kind {reg.kind!r} is not one of: agent, person")
        if reg.name is not None and not NAME_RE.match(reg.name):
            raise invalid(
                f"name {reg.name!r} is not usable: 1-64 letters, digits or ._:@+- ,"
                " starting with a letter or digit"
            )
        async with self._registering:  # one at a time: names stay unique
            return await self._register(reg)

    async def _register(self, reg: Registration) -> tuple[Peer, str]:
        """The peer as it will be is built aside and written first; memory (the
        object requests already hold, for a known peer) changes only after the
        write committed, so a failed write leaves both as they were."""
        now = self.clock()
        known: Peer | None = None
        credential = reg.credential
        if credential:
            existing = await self._peer_id_of(credential)
            known = self.peers.get(existing) if existing else None
            if known is not None and known.user != reg.user:  # never take over another's peer
                known, credential = None, None
            self._came_back(known)
        # What the registration says of its session, for a new peer or a known one.
        told = {
            "kind": reg.kind,
            "client": reg.client,
            "cwd": reg.cwd,
            "repo_id": reg.repo_id,
            "repo_root": reg.repo_root,
            "host": reg.host or self.host,
        }
        if known is None:
            credential = credential or secrets.token_urlsafe(32)
            peer_id = "p-" + secrets.token_hex(4)
            while peer_id in self.peers:
                peer_id = "p-" + secrets.token_hex(4)
            name = reg.name or _derive_name(reg)
            base = Peer(peer_id=peer_id, name=name, created_at=now, user=reg.user, **told)
        else:
            base = known
        assert credential is not None
        was_alive = known is not None and known.alive
        peer = replace(
            base,
            **told,
            pid=reg.pid,
            pid_start=reg.pid_start,
            agent_pid=reg.agent_pid,
            agent_start=reg.agent_start,
            summary=reg.summary[: config.MAX_SUMMARY_CHARS] if reg.summary else base.summary,
            last_seen=now,
            alive=True,
        )
        hashed = secret_hash(credential)
        wanted = reg.name or base.name

        def save(tx: Tx) -> None:
            while known is None and tx.load_peer(peer.peer_id) is not None:  # forgotten here
                peer.peer_id = "p-" + secrets.token_hex(4)
            peer.name = self._unique_name(tx, wanted, peer.peer_id)
            tx.save_peer(peer, hashed)

        await self.store.write(save)
        if known is not None:
            known.__dict__.update(peer.__dict__)
            peer = known
        self.peers[peer.peer_id] = peer
        self._by_credential[hashed] = peer.peer_id
        if not was_alive:
            log.info("peer %s (%s) registered by user %s", peer.peer_id, peer.name, peer.user)
            self.publish("peer_joined", peer=peer.public())
        return peer, credential

    # ---- leases ----------------------------------------------------------
    def _came_back(self, peer: Peer | None) -> None:
        """A peer declared gone shows up with its credential: remember since when."""
        if peer is not None and not peer.alive:
            self._returned.setdefault(peer.peer_id, peer.last_seen)

    async def lapse_report(self, peer: Peer) -> dict[str, Any] | None:
        """What lockd did while this peer was gone (its claims released), once,
        in the first answer that asks after it came back; else None."""
        since = self._returned.pop(peer.peer_id, None)
        if since is None:
            return None
        events = await self.store.read(lambda tx: tx.peer_events(peer.peer_id, "peer_gone", since))
        return lapse.report(events, config.lease_seconds())

    def touch(self, peer: Peer) -> None:
        self._came_back(peer)
        peer.last_seen = self.clock()
        self._pending_seen[peer.peer_id] = peer.last_seen
        if not peer.alive:  # declared dead, yet here: alive again, for every broker
            peer.alive = True
            now = peer.last_seen
            pid = peer.peer_id
            self.later(self.store.write(lambda tx: tx.set_peer(pid, alive=1, last_seen=now)))

    async def revive(self, peer: Peer) -> None:
        """A peer declared dead that shows up with its credential lives again."""
        self._came_back(peer)
        if not peer.alive:
            now = self.clock()
            await self.store.write(lambda tx: tx.set_peer(peer.peer_id, alive=1, last_seen=now))
            peer.alive = True

    async def flush_seen(self) -> None:
        """Heartbeats are kept in memory and written together, once a sweep."""
        if self._pending_seen:
            stamps, self._pending_seen = self._pending_seen, {}
            await self.store.write(lambda tx: tx.touch_peers(stamps))

    # ---- looking peers up ------------------------------------------------
    def live_peers(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.alive]

    def in_scope(self, scope: str, cwd: str, repo_id: str) -> list[Peer]:
        if scope not in SCOPES:
            raise invalid(f"scope {scope!r} is not one of: {', '.join(SCOPES)}")
        peers = self.live_peers()
        if scope == "directory":
            return [p for p in peers if p.cwd == cwd]
        if scope == "repo":
            return [p for p in peers if p.repo_id == repo_id]
        return peers

    async def set_summary(self, peer: Peer, summary: str) -> str:
        if len(summary) > config.MAX_SUMMARY_CHARS:
            raise LockdError(
                "too_large",
                f"summary is {len(summary)} characters; the limit is {config.MAX_SUMMARY_CHARS}",
            )
        await self.store.write(lambda tx: tx.set_peer(peer.peer_id, summary=summary))
        peer.summary = summary  # after the commit: a failed write changes nothing
        self.publish("summary", peer=peer.public())
        return summary

    def find_peer(self, ref: str) -> Peer | None:
        """By id, else by name: a live peer first, else the most recently seen;
        in memory only (see `lookup`)."""
        if ref in self.peers:
            return self.peers[ref]
        named = sorted(
            (p for p in self.peers.values() if p.name == ref),
            key=lambda p: (p.alive, p.last_seen),
        )
        return named[-1] if named else None

    async def lookup(self, ref: str) -> Peer | None:
        """`find_peer`, else the database: a peer forgotten here, or one that
        registered through another broker before the change feed said so."""
        found = self.find_peer(ref)
        if found is None:
            row = await self.store.read(lambda tx: tx.peer_by_ref(ref))
            if row is not None:
                found = self.remember(*row)
        return found

    def name_of(self, peer_id: str) -> str | None:
        """A peer's name, also of one forgotten here (for the dashboard's history)."""
        peer = self.peers.get(peer_id)
        return peer.name if peer is not None else self._names.get(peer_id)

    async def recall_names(self, peer_ids: set[str]) -> None:
        """Read the names of these peers that memory does not have."""
        missing = [p for p in peer_ids if p and self.name_of(p) is None]
        if missing:
            names = await self.store.read(lambda tx: tx.peer_names(missing))
            for peer_id, name in names.items():
                self._keep_name(peer_id, name)

    def _keep_name(self, peer_id: str, name: str) -> None:
        self._names[peer_id] = name
        self._names.move_to_end(peer_id)
        while len(self._names) > KNOWN_NAMES:
            self._names.popitem(last=False)

    def forget(self, keep: Callable[[], set[str]]) -> list[str]:
        """Drop from memory the peers gone and unseen for a lease that nothing
        here refers to (`keep()`: holders of live claims, open streams...): their
        rows stay in the database until retention purges them, and are read
        back when they return or are named. Their ids are returned."""
        cutoff = self.clock() - config.lease_seconds()
        gone = [
            p
            for p in self.peers.values()
            if not p.alive
            and p.last_seen < cutoff
            and p.peer_id not in self._returned
            and p.peer_id not in self._pending_seen
        ]
        if not gone:
            return []
        held = keep()  # only now: it walks every live intent
        gone = [p for p in gone if p.peer_id not in held]
        ids = {p.peer_id for p in gone}
        for peer in gone:
            del self.peers[peer.peer_id]
            self._keep_name(peer.peer_id, peer.name)
        for hashed in [h for h, pid in self._by_credential.items() if pid in ids]:
            del self._by_credential[hashed]
        return sorted(ids)

    def purged(self, peer_ids: list[str]) -> None:
        """Retention deleted these peers: nothing of them stays here either."""
        for peer_id in peer_ids:
            self._names.pop(peer_id, None)
            if peer_id in self.peers and not self.peers[peer_id].alive:
                self.forget_now(peer_id)

    def sizes(self) -> dict[str, int]:
        """What this directory holds in memory, for `lockd status`."""
        return {
            "peers": len(self.peers),
            "credentials": len(self._by_credential),
            "names": len(self._names),
        }

    def forget_now(self, peer_id: str) -> None:
        self.peers.pop(peer_id, None)
        for hashed in [h for h, pid in self._by_credential.items() if pid == peer_id]:
            del self._by_credential[hashed]


def _derive_name(reg: Registration) -> str:
    base = reg.repo_root.rstrip("/").rsplit("/", 1)[-1] or "root"
    client = re.sub(r"[^A-Za-z0-9._-]+", "-", reg.client).strip("-") or "peer"
    name = re.sub(r"[^A-Za-z0-9._:@+-]+", "-", f"{client}@{base}")[:64]
    return name if NAME_RE.match(name) else "peer"
