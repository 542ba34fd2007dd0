"""Intents over the store: announce (all or nothing), list, release, check,
leases and TTLs, and the notices they cause. What a claim decides is
lockd.core.intent_rules; this module stores and delivers it.

Atomicity: one broker process decides every claim under `_lock` and writes
the decision in one transaction, so two peers racing for overlapping
exclusive patterns can never both win, whichever processes they come from.
On a shared store (PostgreSQL, where other brokers may write the same
database) memory can be stale, so the decision is made inside the write
transaction instead, against the repo's live intents read there; the store
serializes those transactions across brokers with an advisory lock.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from lockd.core import feed, patterns
from lockd.core import intent_rules as rules
from lockd.core.announce import Announce
from lockd.core.errors import LockdError, invalid
from lockd.core.models import LOCAL_USER, Intent, Peer, parse_key
from lockd.core.overlap import IntentIndex
from lockd.local import config
from lockd.store.tx import Clock, Tx

if TYPE_CHECKING:
    from lockd.core.models import Message
    from lockd.store.engine import Store


class PeerDirectory(Protocol):
    """What claims need from the peer registry (lockd.broker.registry, which
    owns a IntentRegistry): who a peer is, a notice to peers, the dashboard
    feed, the store, whether the store is shared with other replicas, and the
    clock (the store's). A protocol, not an import: the two services would
    otherwise import each other."""

    store: Store
    peers: dict[str, Peer]
    shared: bool
    clock: Clock

    async def lookup(self, ref: str) -> Peer | None: ...
    async def notice(self, recipients: list[str], text: str, **meta: str) -> Message | None: ...
    def publish_dashboard(self, kind: str, **data: Any) -> None: ...


# A backslash that separates (a Windows path), not one of the `\xNN` escapes
# git's undecodable file names travel with (lockd/gitcmd.py `path_text`).
WINDOWS_SEPARATOR = re.compile(r"\\(?!x[0-9a-fA-F]{2})")
UNKNOWN = -1  # a repo's claim version this broker's memory is not known to match
Fresh = tuple[IntentIndex, int] | None  # a repo as read in a transaction, at its version


def normalize_path(path: str) -> str:
    """A repo-relative file path as the registry compares it."""
    raw = path
    if "/" not in path and WINDOWS_SEPARATOR.search(path):
        path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or path.startswith("/") or ".." in parts:
        raise invalid(
            f"path {raw!r} is not a repo-relative file path (like src/app.py): "
            "no leading /, no .., not empty"
        )
    return "/".join(parts)


def _key(intent: Intent) -> int:
    return int(intent.intent_id[1:])


class _Lost(Exception):
    """Raised inside a shared store's grant job: the database holds a clashing
    claim; `fresh` is the repo as read there (None: memory was exact)."""

    def __init__(self, fresh: Fresh, clash: rules.Clash) -> None:
        super().__init__("claim refused by the database's claims")
        self.fresh = fresh
        self.clash = clash


def _put(tx: Tx, intent: Intent, event: rules.Event) -> Intent:
    """Store one intent of a grant (renewed if it has an id, else new) and its record."""
    if intent.intent_id:
        tx.update_intent(
            _key(intent),
            mode=intent.mode,
            reason=intent.reason,
            expires_at=intent.expires_at,
            notify_when_free=int(intent.notify_when_free),
        )
    else:
        intent = tx.insert_intent(replace(intent))  # the store gives it its id
    _record(tx, event, _key(intent))
    return intent


def _record(tx: Tx, event: rules.Event, intent_id: int | None = None) -> None:
    tx.record_event(
        event.kind,
        intent_id=intent_id,
        peer_id=event.peer_id,
        actor_id=event.actor_id,
        repo_id=event.repo_id,
        detail=event.detail,
    )


class IntentRegistry:
    def __init__(self, registry: PeerDirectory) -> None:
        self.reg = registry
        self.store = registry.store
        self.indexes: dict[str, IntentIndex] = {}
        # On a shared store, the claim version (lockd/store/tx.py) each repo's
        # index is exact at; absent: 0 (never changed); UNKNOWN: a change from
        # another broker may be missing, so the next claim re-reads the repo.
        self.versions: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        await self.reload()

    def _advance(self, bumps: list[tuple[str, int]]) -> None:
        """Versions after changes applied to memory: exact only if contiguous."""
        for repo_id, version in bumps:
            known = self.versions.get(repo_id, 0)
            self.versions[repo_id] = version if known == version - 1 else UNKNOWN

    def index(self, repo_id: str, ignorecase: bool | None = None) -> IntentIndex:
        idx = self.indexes.get(repo_id)
        if idx is None:
            idx = self.indexes[repo_id] = IntentIndex(bool(ignorecase))
        elif ignorecase is not None and ignorecase != idx.ignorecase and not len(idx):
            idx.ignorecase = ignorecase
        return idx

    def all_live(self) -> list[Intent]:
        return [i for idx in self.indexes.values() for i in idx]

    def _view(self, intent: Intent, viewer: Peer | None) -> dict[str, Any]:
        return {
            **rules.view(intent, self.reg.peers.get(intent.peer_id)),
            "expires_at": intent.expires_at,
            "repo": intent.repo_id,
            "mine": viewer is not None and viewer.peer_id == intent.peer_id,
        }

    # ---- announce --------------------------------------------------------
    async def announce(self, peer: Peer, request: Announce) -> dict[str, Any]:
        request = rules.checked(request, config.MAX_REASON_CHARS)
        now = self.reg.clock()
        async with self._lock:
            idx = self.index(request.repo_id, request.ignorecase)
            # Off the event loop (it may take a while against 10,000 intents),
            # still under the lock: nothing changes the index meanwhile.
            decision = await asyncio.to_thread(rules.decide, idx, peer.peer_id, request, now)
            if isinstance(decision, rules.Clash) and not self.reg.shared:
                return await self._refuse(peer, decision)
            try:
                grant, granted = await self._grant(idx, peer.peer_id, decision, now)
            except _Lost as lost:
                if lost.fresh is not None:  # memory catches up with the database
                    self.indexes[request.repo_id], self.versions[request.repo_id] = lost.fresh
                return await self._refuse(peer, lost.clash)
        self.reg.publish_dashboard("claims", **grant.dashboard)
        return rules.grant_answer(granted)

    async def _grant(
        self, idx: IntentIndex, peer_id: str, decision: rules.Grant | rules.Clash, now: float
    ) -> tuple[rules.Grant, list[Intent]]:
        """Write the grant in one transaction, then into memory. On a shared
        store the grant may be another (see `_settle`) or a clash (_Lost)."""
        repo_id = decision.request.repo_id
        known = self.versions.get(repo_id, 0)

        def write(tx: Tx) -> tuple[rules.Grant, list[Intent], Fresh, list[tuple[str, int]]]:
            grant, fresh, ignorecase = self._settle(tx, idx, known, peer_id, decision, now)
            tx.ignorecase[repo_id] = ignorecase  # recorded with the repo's first claim
            stored = [_put(tx, i, e) for i, e in zip(grant.intents, grant.events, strict=True)]
            return grant, stored, fresh, tx.claim_bumps()

        grant, stored, fresh, bumps = await self.store.write(write)
        if fresh is not None:
            idx = self.indexes[repo_id] = fresh[0]
            self.versions[repo_id] = fresh[1]
        for intent in stored:
            idx.add(intent)
        self._advance(bumps)
        return grant, stored

    def _settle(
        self,
        tx: Tx,
        idx: IntentIndex,
        known: int,
        peer_id: str,
        decision: rules.Grant | rules.Clash,
        now: float,
    ) -> tuple[rules.Grant, Fresh, bool]:
        """The grant to write and the repo's case rule, in the write transaction.
        On a shared store, under the database-wide lock: memory's decision if no
        broker changed the repo's claims since memory was exact (same version),
        else one made again on the repo's intents as read here (returned as
        `fresh`, with their version). The repo's case rule is the database's,
        set by its first claim ever, so that every replica compares paths alike.
        A clash raises _Lost: nothing is written."""
        fresh: Fresh = None
        ignorecase = idx.ignorecase
        if self.reg.shared:
            repo_id = decision.request.repo_id
            version, recorded = tx.claim_state(repo_id)
            ignorecase = idx.ignorecase if recorded is None else recorded
            if version != known or ignorecase != idx.ignorecase:
                read = IntentIndex(ignorecase)
                for live in tx.live_intents(repo_id):
                    read.add(live)
                decision = rules.decide(read, peer_id, decision.request, now)
                fresh = (read, version)
        if isinstance(decision, rules.Clash):
            raise _Lost(fresh, decision)
        return decision, fresh, ignorecase

    async def _refuse(self, peer: Peer, clash: rules.Clash) -> dict[str, Any]:
        """Record the refusal (and the watch asked for), tell the holders."""
        ignorecase = self.index(clash.request.repo_id).ignorecase
        # Off the loop: an example is a product; a wide call may have 100,000 clashes.
        refusal = await asyncio.to_thread(rules.refuse, clash, peer, self.reg.peers, ignorecase)
        watch = refusal.watch

        def write(tx: Tx) -> None:
            _record(tx, refusal.event)
            if watch is not None:
                tx.add_watch(watch.peer_id, watch.repo_id, watch.patterns, watch.mode)

        await self.store.write(write)
        await self._tell(refusal.notices)
        self.reg.publish_dashboard("claims", **refusal.dashboard)
        return refusal.answer

    async def _tell(self, notices: list[rules.Notice]) -> None:
        for notice in notices:
            await self.reg.notice([notice.to], notice.text, **notice.meta)

    # ---- read ------------------------------------------------------------
    def locks(
        self,
        repo_id: str | None = None,
        path: str | None = None,
        peer_id: str | None = None,
        viewer: Peer | None = None,
    ) -> list[dict[str, Any]]:
        if repo_id is not None:
            idx = self.indexes.get(repo_id)
            if idx is None:
                return []
            found = idx.claims_on(normalize_path(path)) if path else list(idx)
        else:
            if path:
                raise invalid("path needs a repo: run inside a checkout or pass repo")
            found = self.all_live()
        now = self.reg.clock()
        found = [
            i for i in found if rules.current(i, now) and (not peer_id or i.peer_id == peer_id)
        ]
        found.sort(key=lambda i: (i.repo_id, i.since, i.intent_id))
        return [self._view(i, viewer) for i in found]

    def check(self, repo_id: str, paths: list[str], viewer: Peer | None) -> list[dict[str, Any]]:
        if len(paths) > config.MAX_CHECK_PATHS:
            raise LockdError(
                "too_large", f"{len(paths)} paths; check at most {config.MAX_CHECK_PATHS} a call"
            )
        clean = [normalize_path(p) for p in paths]
        idx = self.indexes.get(repo_id)
        out = []
        now = self.reg.clock()
        for path in clean:
            claims = [i for i in idx.claims_on(path) if rules.current(i, now)] if idx else []
            out.append({"path": path, "claims": [self._view(i, viewer) for i in claims]})
        return out

    async def commit_touched(
        self,
        repo_id: str,
        intent_ids: list[str],
        paths: list[str],
        hook: str,
        committer: str | None,
        user: str = LOCAL_USER,
        blocked: bool = False,
    ) -> list[str]:
        """Record that a commit touched claimed files (or was refused for it),
        and tell each holder once, of its own files only; never the committer.
        The committer a hook names counts only if it is the calling user's own
        peer: one user's hook cannot put a commit on another user's agent."""
        who = await self.reg.lookup(committer) if committer else None
        if who is not None and user != LOCAL_USER and who.user != user:
            who = None
        if who is not None:
            name = who.name
        else:
            name = "a person or unknown process" if user == LOCAL_USER else f"user {user}"
        touched = self._touched(repo_id, set(intent_ids), paths)
        notices, event, dashboard = rules.commit_touched(
            touched, who.peer_id if who else None, name, hook, blocked, repo_id
        )
        await self.store.write(lambda tx: _record(tx, event))
        await self._tell(notices)
        self.reg.publish_dashboard("claims", **dashboard)
        return [n.to for n in notices]

    def _touched(
        self, repo_id: str, intent_ids: set[str], paths: list[str]
    ) -> list[tuple[str, list[Intent]]]:
        """Per path (as many as a check takes), the named intents that claim it."""
        idx = self.indexes.get(repo_id)
        out: list[tuple[str, list[Intent]]] = []
        for raw in paths[: config.MAX_CHECK_PATHS]:
            try:
                path = normalize_path(raw)
            except LockdError:
                continue
            hits = [i for i in idx.claims_on(path) if i.intent_id in intent_ids] if idx else []
            out.append((path, hits))
        return out

    # ---- release ---------------------------------------------------------
    async def release(
        self,
        peer: Peer,
        repo_id: str | None = None,
        intent_ids: list[str] | None = None,
        pattern_list: list[str] | None = None,
        force: bool = False,
    ) -> list[str]:
        async with self._lock:
            chosen = self._choose(peer, repo_id, intent_ids, pattern_list, force)
            forced = [i for i in chosen if i.peer_id != peer.peer_id]
            everything = not intent_ids and not pattern_list  # "all of mine"
            done = await self._release(
                chosen,
                actor=peer,
                cause="forced" if forced else "released",
                all_of=(peer.peer_id, repo_id) if everything else None,
            )
            chosen = done or []
            forced = [i for i in chosen if i.peer_id != peer.peer_id]
        for intent in forced:
            await self.reg.notice(
                [intent.peer_id],
                f"{peer.name} ({peer.peer_id}) force-released your claim {intent.pattern} "
                f"({intent.intent_id}) in {intent.repo_id}.",
                event="force_released",
                intent_id=intent.intent_id,
                actor_id=peer.peer_id,
            )
        await self.wake_watchers({i.repo_id for i in chosen})
        return [i.intent_id for i in chosen]

    def _choose(
        self,
        peer: Peer,
        repo_id: str | None,
        intent_ids: list[str] | None,
        pattern_list: list[str] | None,
        force: bool,
    ) -> list[Intent]:
        live = {i.intent_id: i for i in self.all_live()}
        if intent_ids:
            chosen = []
            for raw in intent_ids:
                n = parse_key(str(raw), "i")
                intent = live.get(f"i{n}") if n is not None else None
                if intent is None:
                    raise LockdError(
                        "not_found", f"no live intent {raw!r}", next="see {locks} for current ids"
                    )
                if intent.peer_id != peer.peer_id and not force:
                    holder = self.reg.peers.get(intent.peer_id)
                    raise LockdError(
                        "forbidden",
                        f"intent {raw} belongs to {holder.name if holder else intent.peer_id}",
                        next="ask them to release it ({send}), or force-release it ({force}; "
                        "recorded, they are told)",
                    )
                chosen.append(intent)
            return chosen
        mine = [i for i in live.values() if i.peer_id == peer.peer_id]
        if repo_id:
            mine = [i for i in mine if i.repo_id == repo_id]
        if pattern_list:
            wanted = set(patterns.normalize_all(list(pattern_list)))
            chosen = [i for i in mine if i.pattern in wanted]
            missing = wanted - {i.pattern for i in chosen}
            if missing:
                raise LockdError(
                    "not_found",
                    f"you hold no intent on {', '.join(sorted(missing))}",
                    next="see {locks}",
                )
            return chosen
        return mine

    async def _release(
        self,
        chosen: list[Intent],
        actor: Peer | None,
        cause: str,
        first: Callable[[Tx], bool] | None = None,
        all_of: tuple[str, str | None] | None = None,
        why: str | None = None,
    ) -> list[Intent] | None:
        """Release `chosen` in one transaction, after `first` (if given) agreed
        in it; None (nothing changed) if it did not. The intents released are
        returned: one another broker released meanwhile is skipped, not
        recorded twice. all_of=(peer_id, repo or None): on a shared store also
        what the database holds for that peer that memory lacks (a claim made
        through another broker whose notice has not arrived). `why` is
        recorded with each release (a peer gone: heartbeats stopped...)."""
        actor_id = actor.peer_id if actor else None
        now = self.reg.clock()
        expiring = cause == "expired"
        bumps: list[tuple[str, int]] = []
        done: list[Intent] = []

        def release(tx: Tx) -> bool:
            if first is not None and not first(tx):
                return False
            todo = list(chosen)
            if all_of is not None and self.reg.shared:
                known = {i.intent_id for i in todo}
                todo += [i for i in tx.live_intents_of(*all_of) if i.intent_id not in known]
            for intent in todo:
                # An expiry re-checks the deadline: the holder may have renewed it
                # through another broker a moment ago.
                if not tx.release_intent(
                    _key(intent), actor_id, cause, expired_at=now if expiring else None
                ):
                    continue
                tx.record_event(
                    cause,
                    intent_id=_key(intent),
                    peer_id=intent.peer_id,
                    actor_id=actor_id,
                    repo_id=intent.repo_id,
                    detail={
                        "pattern": intent.pattern,
                        "mode": intent.mode,
                        **({"why": why} if why else {}),
                    },
                )
                done.append(intent)
            bumps.extend(tx.claim_bumps())
            return True

        if not chosen and first is None and all_of is None:
            return []
        if not await self.store.write(release):
            return None
        # Gone from the database, by this release or an earlier one elsewhere; a
        # renewed expiry stays (its own notice brings the new deadline).
        for intent in done if expiring else {i.intent_id: i for i in chosen + done}.values():
            self.index(intent.repo_id).remove(intent.intent_id)
        self._advance(bumps)
        for intent in done:
            self.reg.publish_dashboard(
                "claims",
                repo=intent.repo_id,
                event=cause,
                intent_id=intent.intent_id,
                peer_id=intent.peer_id,
            )
        return done

    async def release_all_of(
        self, peer: Peer, first: Callable[[Tx], bool] | None = None, why: str | None = None
    ) -> list[Intent] | None:
        """A peer is gone: its claims go with it, in the transaction that
        `first` (marking it dead) runs in. None if `first` declined; the caller
        then wakes the watchers of what was released (`wake_watchers`)."""
        async with self._lock:
            mine = [i for i in self.all_live() if i.peer_id == peer.peer_id]
            return await self._release(
                mine,
                actor=None,
                cause="peer_gone",
                first=first,
                all_of=(peer.peer_id, None),
                why=why,
            )

    async def apply(self, change: feed.ClaimChange) -> None:
        """One claim another broker granted, updated (put) or released
        (dropped), as its notice carries it: applied to the index alone, since
        rebuilding a repo of 10,000 intents takes about a second. Re-read the
        repo instead when memory may lack an earlier change or differs."""
        repo_id, version, ignorecase = change.repo_id, change.version, change.ignorecase
        async with self._lock:
            known = self.versions.get(repo_id, 0)
            if version is not None and known != UNKNOWN and version <= known:
                return  # memory already has it (read in a transaction since)
            idx = self.indexes.get(repo_id)
            other_rule = idx is not None and len(idx) > 0 and idx.ignorecase != ignorecase
            # A gap, an older broker's notice, or another case rule: re-read the repo.
            stale = version is None or known != version - 1 or other_rule
            if not stale:
                put = await self._put_of(change)
                idx = self.index(repo_id, ignorecase)
                if put is not None:
                    idx.add(put)  # replaces an intent with its id
                else:  # dropped, or put and released since
                    idx.remove(change.intent_id)
                self.versions[repo_id] = version
        if stale:
            await self.reload(repo_id)

    async def _put_of(self, change: feed.ClaimChange) -> Intent | None:
        """The intent a change puts: as its notice carries it, or as the database
        holds it (too big for the notice; None: released since)."""
        if isinstance(change, feed.ClaimDropped):
            return None
        if change.intent is not None:
            return change.intent
        n = int(change.intent_id[1:])
        return await self.store.read(lambda tx: tx.intent(n))

    async def reload(self, repo_id: str | None = None) -> None:
        """Take the database's live intents (of one repo, or all) as the truth,
        with the claim versions they are exact at. Versions are read first: a
        change committed between the two reads is in the intents and comes
        again in its notice, a no-op. If the read fails, memory is marked
        unsure, so the next claim there re-reads the repo in its transaction."""

        def read(tx: Tx) -> tuple[dict[str, tuple[int, bool]], list[Intent]]:
            return tx.claim_versions(repo_id), tx.live_intents(repo_id)

        async with self._lock:
            repos = {repo_id} if repo_id is not None else set(self.indexes)
            try:
                versions, live = await self.store.read(read)
            except Exception:
                for r in repos:
                    self.versions[r] = UNKNOWN
                raise
            repos |= {i.repo_id for i in live} | set(versions)
            fresh = {}
            for r in repos:
                version, ignorecase = versions.get(r, (0, self.index(r).ignorecase))
                fresh[r] = IntentIndex(ignorecase)
                self.versions[r] = version
            for intent in live:
                fresh[intent.repo_id].add(intent)
            self.indexes.update(fresh)

    async def expire(self, now: float) -> None:
        async with self._lock:
            due = [i for i in self.all_live() if i.expires_at is not None and i.expires_at <= now]
            done = await self._release(due, actor=None, cause="expired") if due else []
        await self.wake_watchers({i.repo_id for i in done or []})

    async def wake_watchers(self, repos: set[str]) -> None:
        """Tell peers that asked `notify_when_free` once nothing blocks them."""
        for repo_id in repos:
            idx = self.indexes.get(repo_id)
            for watch in await self.store.read(lambda tx, r=repo_id: tx.watches(r)):
                watcher = self.reg.peers.get(watch["peer_id"])
                blocked = (
                    idx is not None
                    and watcher is not None
                    and watcher.alive
                    and await asyncio.to_thread(
                        rules.blocked, idx, watcher.peer_id, watch["patterns"], watch["mode"]
                    )
                )
                if blocked:
                    continue
                mine = await self.store.write(lambda tx, w=watch["id"]: tx.delete_watch(w))
                if mine and watcher is not None and watcher.alive:  # told once, by one broker
                    await self._tell(
                        [
                            rules.free_notice(
                                watcher.peer_id, watch["patterns"], repo_id, watcher.kind
                            )
                        ]
                    )
