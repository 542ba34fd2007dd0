"""Peers and messages: the rules, over the store. Only this module and
`claims` reach the store; routes call these methods and nothing below them.

Every change is one store job (one transaction); wake-ups are published by the
job's after-commit callback, which the store's single writer runs in commit
order, so streams see messages durably stored and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from lockd.broker.activity import ActivityBook
from lockd.broker.events import EventHub, Subscription
from lockd.broker.intents import IntentRegistry
from lockd.core import feed, lapse
from lockd.core.digest import secret_hash
from lockd.core.errors import LockdError, invalid
from lockd.core.models import BROADCASTS, LOCAL_USER, SCOPES, Message, Peer, parse_key
from lockd.local import config, processes
from lockd.store.engine import Store
from lockd.store.tx import Clock, Tx

log = logging.getLogger("lockd.broker.registry")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$")
DASHBOARD = "*dashboard*"
STREAM_GRACE_SECONDS = 0.5  # a session may reconnect this fast and keep its claims


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


class Registry:
    def __init__(self, store: Store, hub: EventHub | None = None) -> None:
        self.store = store
        self.hub = hub or EventHub()
        self.host = socket.gethostname()
        self.peers: dict[str, Peer] = {}
        self._by_credential: dict[str, str] = {}
        self._streams: dict[str, int] = {}
        self._pending_seen: dict[str, float] = {}
        self._closed_at: dict[str, float] = {}
        # Peers declared gone that came back, and when they were last seen before:
        # their next register, heartbeat or whoami answer says what they missed.
        self._returned: dict[str, float] = {}
        self.name_hold = config.name_hold_seconds()
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._registering = asyncio.Lock()
        self.intents = IntentRegistry(self)
        self.activity = ActivityBook(self)  # in memory: it dies with each session
        # Set by whoever keeps users' tokens: re-read them when another broker changed them.
        self.on_users_changed: Callable[[], Awaitable[None]] | None = None
        self.started_at = self.clock()
        # What the dashboard shows that the events table does not keep (messages,
        # joins): the last few, in memory only.
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)

    # ---- lifecycle -------------------------------------------------------
    async def start(self, sweep: bool = True) -> None:
        for peer, credential_hash in await self.store.read(lambda tx: tx.load_peers()):
            self.peers[peer.peer_id] = peer
            self._by_credential[credential_hash] = peer.peer_id
            if peer.alive:  # give sessions a fresh lease to reconnect after a restart
                peer.last_seen = max(peer.last_seen, self.clock() - config.lease_seconds() / 2)
        await self.intents.load()
        follow = getattr(self.store, "follow", None)
        if follow is not None:
            await follow(self.apply_change, self.resync)
        if sweep:
            self._sweeper = asyncio.create_task(self._sweep_forever())

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
            await self._flush_seen()
        except LockdError as exc:  # last heartbeats lost; stopping must not fail on it
            log.warning("last-seen times not saved: %s", exc.message)

    @property
    def clock(self) -> Clock:
        """The store's: the time peers, claims and the records they make all go by."""
        return self.store.clock

    @property
    def shared(self) -> bool:
        """Other brokers may write this store (PostgreSQL): memory can lag it."""
        return bool(getattr(self.store, "shared", False))

    # ---- peers -----------------------------------------------------------
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
        """Whose credential this is: memory, else (shared store) the database,
        for a peer registered through another broker before its notice came."""
        hashed = secret_hash(credential)
        peer_id = self._by_credential.get(hashed)
        if peer_id is None and self.shared:
            found = await self.store.read(lambda tx: tx.peer_by_credential(hashed))
            if found is not None:
                peer_id = self._remember(*found).peer_id
        return peer_id

    def _remember(self, peer: Peer, credential_hash: str) -> Peer:
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
            self.publish_dashboard(kind, peer=known.public(), cause="through another broker")
        for old in [h for h, pid in self._by_credential.items() if pid == peer.peer_id]:
            del self._by_credential[old]
        self._by_credential[credential_hash] = peer.peer_id
        return known

    async def _refresh_seen(self, peers: list[Peer]) -> None:
        """Heartbeats may have reached another broker: take the database's last_seen."""
        if not peers:
            return
        ids = [p.peer_id for p in peers]
        seen = await self.store.read(lambda tx: tx.last_seen(ids))
        for peer in peers:
            peer.last_seen = max(peer.last_seen, seen.get(peer.peer_id, 0.0))

    # ---- other brokers on one database (the feed: lockd/store/postgres.py) --
    async def apply_change(self, change: feed.Change) -> None:
        """What another broker committed: push its messages to the streams held
        here, and re-read the peers, claims or tokens it changed."""
        if isinstance(change, feed.MessageSent):
            await self._sent_elsewhere(change)
        elif isinstance(change, feed.PeerChanged):
            found = await self.store.read(lambda tx: tx.load_peer(change.peer_id))
            if found is not None:
                self._remember(*found)
        elif isinstance(change, feed.ClaimPut | feed.ClaimDropped):
            await self.intents.apply(change)
            self.publish_dashboard("claims", repo=change.repo_id, event="changed elsewhere")
        elif isinstance(change, feed.TokensChanged) and self.on_users_changed is not None:
            await self.on_users_changed()

    async def _sent_elsewhere(self, sent: feed.MessageSent) -> None:
        message, to = sent.message, sent.recipients
        if message is None or to is None:  # too big for the notice: the rows themselves
            found = await self.store.read(lambda tx: tx.message(sent.message_id))
            if found is None:
                return
            message, to = found[0], tuple(found[1])
        recipients = list(to)
        self._push(message.as_dict(), recipients)
        if message.kind == "message":
            self.publish_dashboard(
                "message",
                from_id=message.from_id,
                from_name=message.from_name,
                to=message.to,
                recipients=recipients,
                message_id=message.message_id,
            )

    async def resync(self) -> None:
        """After the change feed was down (notices may be lost): re-read all
        peers and claims, and re-push what streams held here have not had."""
        for peer, credential_hash in await self.store.read(lambda tx: tx.load_peers()):
            self._remember(peer, credential_hash)
        await self.intents.reload()
        for peer_id in list(self._streams):
            for message in await self.store.read(lambda tx, p=peer_id: tx.undelivered(p)):
                self._push(message.as_dict(), [peer_id])
        if self.on_users_changed is not None:
            await self.on_users_changed()

    def _unique_name(self, wanted: str, peer_id: str) -> str:
        """`wanted`, or `wanted-2`... if another peer holds it: a live one, or
        one gone less than LOCKD_NAME_HOLD_SECONDS ago, whose name waits for it
        (messages to that name go to its inbox, and it gets the name back)."""
        held_since = self.clock() - self.name_hold
        taken = {
            p.name
            for p in self.peers.values()
            if p.peer_id != peer_id and (p.alive or p.last_seen > held_since)
        }
        name, n = wanted, 2
        while name in taken:
            name, n = f"{wanted}-{n}", n + 1
        return name

    async def register(self, reg: Registration) -> tuple[Peer, str]:
        if reg.credential:
            back = self.peers.get(self._by_credential.get(secret_hash(reg.credential), ""))
            self._came_back(back if back is not None and back.user == reg.user else None)
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
            name=self._unique_name(reg.name or base.name, base.peer_id),
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
        await self.store.write(lambda tx: tx.save_peer(peer, hashed))
        if known is not None:
            known.__dict__.update(peer.__dict__)
            peer = known
        self.peers[peer.peer_id] = peer
        self._by_credential[hashed] = peer.peer_id
        if not was_alive:
            log.info("peer %s (%s) registered by user %s", peer.peer_id, peer.name, peer.user)
            self.publish_dashboard("peer_joined", peer=peer.public())
        return peer, credential

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

    async def unregister(self, peer: Peer) -> None:
        await self.mark_dead(peer, "goodbye")

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
        self.activity.forget(peer.peer_id)
        log.info("peer %s (%s) is gone: %s", peer.peer_id, peer.name, cause)
        self.publish_dashboard("peer_left", peer=peer.public(), cause=cause)
        if released and cause != lapse.GOODBYE:  # waits in its inbox for its return
            at = self.clock()
            await self.notice(
                [peer.peer_id],
                lapse.notice_text(released, cause, at, config.lease_seconds()),
                event="claims_released",
                cause=cause,
                intent_ids=",".join(i.intent_id for i in released),
                released_at=f"{at:.3f}",
            )
        await self.intents.wake_watchers({i.repo_id for i in released})
        return True

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
        self.publish_dashboard("summary", peer=peer.public())
        return summary

    def find_peer(self, ref: str) -> Peer | None:
        """By id, else by name: a live peer first, else the most recently seen."""
        if ref in self.peers:
            return self.peers[ref]
        named = sorted(
            (p for p in self.peers.values() if p.name == ref),
            key=lambda p: (p.alive, p.last_seen),
        )
        return named[-1] if named else None

    # ---- messages --------------------------------------------------------
    def resolve_recipients(self, sender: Peer, to: str) -> list[str]:
        to = to.strip()
        if to in BROADCASTS:
            peers = self.in_scope(BROADCASTS[to], sender.cwd, sender.repo_id)
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
        peer = self.find_peer(to)
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
        recipients = self.resolve_recipients(sender, to)
        meta = {"from_summary": sender.summary[:200]} if sender.summary else {}
        message, recipients = await self._deliver(
            recipients, to, text, sender=sender, meta=meta, request_key=request_key
        )
        self.publish_dashboard(
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
        recipients = [r for r in recipients if r in self.peers]
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

        return await self.store.write(job, after=lambda r: self._push(r[0].as_dict(), r[1]))

    def _push(self, message: dict[str, Any], recipients: list[str]) -> None:
        """To the recipients' streams held here (each skips an id it has sent)."""
        event = {"type": "message", "message": message}
        for rid in recipients:
            self.hub.publish(rid, event)

    async def open_stream(self, peer: Peer) -> tuple[Subscription, list[Message]]:
        """Subscribe first, then read the backlog, so nothing falls in between."""
        sub = self.hub.subscribe(peer.peer_id)
        self._streams[peer.peer_id] = self._streams.get(peer.peer_id, 0) + 1
        await self.revive(peer)
        self.touch(peer)
        backlog = await self.store.read(lambda tx: tx.undelivered(peer.peer_id))
        return sub, backlog

    async def close_stream(self, peer: Peer, sub: Subscription) -> None:
        sub.close()
        left = self._streams.get(peer.peer_id, 1) - 1
        if left <= 0:
            # The sweeper decides after a short grace, so a session that reconnects
            # at once (a new MCP server for the same agent) keeps its claims.
            self._streams.pop(peer.peer_id, None)
            self._closed_at[peer.peer_id] = self.clock()
        else:
            self._streams[peer.peer_id] = left

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

    async def history(self, limit: int = 100, repo_id: str | None = None) -> list[dict[str, Any]]:
        """Recorded claim events, newest first."""
        return await self.store.read(lambda tx: tx.events(limit, repo_id))

    # ---- dashboard bus ---------------------------------------------------
    def publish_dashboard(self, kind: str, **data: Any) -> None:
        event = {"type": kind, "at": self.clock(), **data}
        self.recent.append(event)
        self.hub.publish(DASHBOARD, event)

    # ---- liveness --------------------------------------------------------
    def _process_gone(self, peer: Peer) -> bool:
        """Only a process on this machine can be checked; others rely on the lease."""
        if peer.kind != "agent" or peer.host != self.host or peer.pid is None:
            return False
        return not processes.is_alive(peer.pid, peer.pid_start)

    async def sweep(self) -> None:
        now = self.clock()
        lease = config.lease_seconds()
        if self.shared:
            await self._refresh_seen([p for p in self.live_peers() if now - p.last_seen > lease])
        for peer in self.live_peers():
            if peer.kind != "agent":
                continue
            if now - peer.last_seen > lease:
                await self.mark_dead(peer, "heartbeats stopped", seen_before=now - lease)
            elif (
                peer.peer_id not in self._streams
                and now - self._closed_at.get(peer.peer_id, 0.0) >= STREAM_GRACE_SECONDS
                and self._process_gone(peer)
            ):
                self._closed_at.pop(peer.peer_id, None)
                await self.mark_dead(peer, "process gone")
        await self.intents.expire(now)
        await self._flush_seen()

    async def _flush_seen(self) -> None:
        if self._pending_seen:
            stamps, self._pending_seen = self._pending_seen, {}
            await self.store.write(lambda tx: tx.touch_peers(stamps))

    async def _sweep_forever(self) -> None:
        last_purge = 0.0
        refused = ""  # the store's refusal, logged once rather than every second
        while True:
            await asyncio.sleep(config.SWEEP_SECONDS)
            try:
                await self.sweep()
                if self.clock() - last_purge > 3600:
                    last_purge = self.clock()
                    cutoff = last_purge - config.DELIVERED_RETENTION_DAYS * 86400
                    await self.store.write(partial(Tx.purge_messages, before=cutoff))
            except LockdError as exc:  # the store refuses writes (locked, or its file lost)
                if exc.message != refused:
                    log.warning("sweep skipped: %s", exc.message)
                refused = exc.message
            except Exception:  # the sweeper must outlive any one bad sweep
                log.exception("sweep failed")
            else:
                refused = ""


def _message_ids(raw: list[str]) -> list[int]:
    ids = []
    for item in raw:
        n = parse_key(str(item), "m")
        if n is None:
            raise invalid(f"message id {item!r} is not of the form m123")
        ids.append(n)
    return ids


def _derive_name(reg: Registration) -> str:
    base = reg.repo_root.rstrip("/").rsplit("/", 1)[-1] or "root"
    client = re.sub(r"[^A-Za-z0-9._-]+", "-", reg.client).strip("-") or "peer"
    name = re.sub(r"[^A-Za-z0-9._:@+-]+", "-", f"{client}@{base}")[:64]
    return name if NAME_RE.match(name) else "peer"
