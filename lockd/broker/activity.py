"""Activity (what live sessions actually changed), the overlaps it reveals,
and the merge forecast's verdicts, kept by the broker in memory only.

Why memory: activity is ephemeral by definition. It is a live session's view
of its own checkout, re-reported whenever it changes, and it dies with the
session; after a broker restart every session's next report (its MCP
server's next scan, its client's next edit) rebuilds it. Nothing of it is
history worth a migration. The registry's one hook: `forget(peer_id)` when a
session ends. Paths only (repo-relative), never contents; bounded per peer
(lockd.core.activity.MAX_PATHS, and a count of the rest)."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from lockd.broker.intents import IntentRegistry, normalize_path
from lockd.core import activity as rules
from lockd.core.errors import LockdError, invalid
from lockd.store.tx import Clock

if TYPE_CHECKING:
    from lockd.core.models import Message, Peer

log = logging.getLogger("lockd.broker.activity")
MAX_VERDICTS = 500  # pairs one forecast may report (10 checkouts make 45)
MAX_VERDICT_PATHS = 50  # conflicting files named per pair


class PeerDirectory(Protocol):
    """What activity needs from the registry that owns it (a protocol, not an
    import: the two would otherwise import each other)."""

    peers: dict[str, Peer]
    intents: IntentRegistry
    clock: Clock

    def live_peers(self) -> list[Peer]: ...
    def later(self, work: Coroutine[Any, Any, Any]) -> None: ...
    async def notice(self, recipients: list[str], text: str, **meta: str) -> Message | None: ...
    def publish_dashboard(self, kind: str, **data: Any) -> None: ...


class ActivityBook:
    """Per live peer its Activity; the overlaps already told; the verdicts."""

    def __init__(self, reg: PeerDirectory) -> None:
        self.reg = reg
        self.by_peer: dict[str, rules.Activity] = {}
        self.told: set[tuple[str, str, str]] = set()
        self.verdicts: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.versions: dict[str, int] = {}  # per repo: bumped by every change of its activity

    # ---- reports ---------------------------------------------------------
    def _of(self, peer: Peer) -> rules.Activity:
        act = self.by_peer.get(peer.peer_id)
        if act is None or act.repo_id != peer.repo_id or act.checkout != peer.repo_root:
            act = rules.Activity(peer.peer_id, peer.repo_id, peer.repo_root)
            self.by_peer[peer.peer_id] = act
        return act

    def report(
        self,
        peer: Peer,
        edited: list[str] | None = None,
        git: dict[str, str] | None = None,
        total: int | None = None,
        branch: str | None = None,
    ) -> dict[str, Any]:
        """Take an edit (paths the client edited) or a git scan (path -> kind,
        replacing the last one); tell both sides of each new overlap, once.
        Answers the overlaps the reporter has, new or not, on what it reported."""
        edited = [normalize_path(p) for p in edited or []]
        scan = None if git is None else _checked_scan(git)
        if len(edited) > rules.MAX_REPORT:
            raise LockdError("too_large", f"{len(edited)} paths; report at most {rules.MAX_REPORT}")
        act = self._of(peer)
        now = self.reg.clock()
        changed = rules.merge_edits(act, edited, now) if edited else []
        if scan is not None:
            changed += rules.replace_git(act, scan, max(total or 0, len(scan)), now)
        if branch is not None:
            act.branch = branch[:200]
        if changed or scan is not None:
            self.versions[peer.repo_id] = self.versions.get(peer.repo_id, 0) + 1
        fresh = self._new_overlaps(act, changed)
        if fresh:
            self.reg.later(self._tell(act.peer_id, fresh))
            self.reg.publish_dashboard("activity", repo=peer.repo_id, event="overlap")
        return {
            "overlaps": self.on_paths(peer.repo_id, edited or list(act.paths)[:50], peer),
            "version": self.versions.get(peer.repo_id, 0),
            "paths": len(act.paths),
            "more": act.more,
        }

    def _new_overlaps(self, act: rules.Activity, changed: list[str]) -> dict[str, list[str]]:
        """Other peer id -> the changed paths it overlaps on and was not told of."""
        found: dict[str, list[str]] = {}
        for other in self._others(act.repo_id, act.peer_id):
            for path in rules.overlaps(act, other, changed):
                key = rules.pair_key(act.peer_id, other.peer_id, path)
                if key not in self.told:
                    self.told.add(key)
                    found.setdefault(other.peer_id, []).append(path)
        return found

    async def _tell(self, reporter_id: str, fresh: dict[str, list[str]]) -> None:
        """Both sides, each naming the other, its kind and since when, and
        whether anyone claims the file."""
        reporter = self.by_peer.get(reporter_id)
        if reporter is None:
            return
        for other_id, paths in fresh.items():
            other = self.by_peer.get(other_id)
            if other is None:
                continue
            claims = self._claims(reporter.repo_id, paths)
            for me, them in ((reporter, other), (other, reporter)):
                await self._notice(me, them, paths, claims)

    async def _notice(
        self, me: rules.Activity, them: rules.Activity, paths: list[str], claims: dict[str, str]
    ) -> None:
        peer = self.reg.peers.get(them.peer_id)
        if peer is None:
            return
        found = [(p, *them.paths[p], claims.get(p, "")) for p in paths if p in them.paths]
        if not found:
            return
        await self.reg.notice(
            [me.peer_id],
            rules.notice_text(peer.name, peer.peer_id, found),
            event="activity_overlap",
            other_id=peer.peer_id,
            other_name=peer.name,
            paths=",".join(p for p, *_ in found[: rules.MAX_TOLD_PATHS]),
        )

    def _claims(self, repo_id: str, paths: list[str]) -> dict[str, str]:
        """path -> who claims it, in words ("claimed by bob with /src/")."""
        out: dict[str, str] = {}
        for entry in self.reg.intents.check(repo_id, paths, None):
            held = [f"{c['peer_name']} with {c['pattern']}" for c in entry["claims"]]
            if held:
                out[entry["path"]] = "claimed by " + ", ".join(held[:3])
        return out

    def _others(self, repo_id: str, peer_id: str) -> list[rules.Activity]:
        out = []
        for act in self.by_peer.values():
            peer = self.reg.peers.get(act.peer_id)
            if act.repo_id == repo_id and act.peer_id != peer_id and peer and peer.alive:
                out.append(act)
        return out

    # ---- reading ---------------------------------------------------------
    def on_paths(
        self, repo_id: str, paths: list[str], viewer: Peer | None
    ) -> list[list[dict[str, Any]]]:
        """For each path, the other live peers' activity on it (what check
        answers). A viewer in the same checkout shares that checkout's git
        state: there, only what the other session edited itself is news."""
        viewer_id = viewer.peer_id if viewer else ""
        others = self._others(repo_id, viewer_id)
        mine = self.by_peer.get(viewer_id)
        out = []
        for path in paths:
            seen = []
            for act in others:
                entry = act.paths.get(path)
                if entry is None:
                    continue
                same = viewer is not None and act.checkout == viewer.repo_root
                if same and entry[0] != "edited":
                    continue
                seen.append(self._view(act, path, entry, mine))
            out.append(seen)
        return out

    def _view(
        self,
        act: rules.Activity,
        path: str,
        entry: tuple[str, float],
        mine: rules.Activity | None,
    ) -> dict[str, Any]:
        peer = self.reg.peers.get(act.peer_id)
        name = peer.name if peer else act.peer_id
        return {
            "peer_id": act.peer_id,
            "peer_name": name,
            "kind": entry[0],
            "since": entry[1],
            "checkout": act.checkout,
            "overlap": mine is not None and rules.clashing(mine, act, path),
            "text": rules.line(name, entry[0], entry[1]),
        }

    def of_repo(self, repo_id: str, limit: int = 200) -> dict[str, Any]:
        """Every live peer's activity in a repo (paths up to `limit` each), and
        the forecast's verdicts: the dashboard's and `lockd forecast`'s view."""
        peers = []
        for act in self._others(repo_id, ""):
            peer = self.reg.peers[act.peer_id]
            rows = sorted(act.paths.items(), key=lambda kv: kv[1][1])
            peers.append(
                {
                    "peer_id": act.peer_id,
                    "name": peer.name,
                    "checkout": act.checkout,
                    "branch": act.branch,
                    "paths": [{"path": p, "kind": k, "since": s} for p, (k, s) in rows[:limit]],
                    "more": act.more + max(0, len(rows) - limit),
                }
            )
        return {
            "repo": repo_id,
            "version": self.versions.get(repo_id, 0),
            "peers": peers,
            "verdicts": self.verdicts_of(repo_id),
        }

    def overlaps_of(self, repo_id: str) -> list[dict[str, Any]]:
        """Every two live peers of a repo with activity on the same files."""
        acts = self._others(repo_id, "")
        out = []
        for i, a in enumerate(acts):
            for b in acts[i + 1 :]:
                paths = rules.overlaps(a, b)
                if paths:
                    out.append({"a": a.peer_id, "b": b.peer_id, "paths": sorted(paths)[:50],
                                "count": len(paths)})  # fmt: skip
        return out

    def repos(self) -> list[str]:
        return sorted({a.repo_id for a in self.by_peer.values()})

    # ---- the forecast's verdicts (computed where the checkouts are) -------
    def put_verdicts(self, peer: Peer, repo_id: str, verdicts: list[dict[str, Any]]) -> int:
        """Verdicts between live peers of the caller's repo; the others are refused."""
        if repo_id != peer.repo_id:
            raise LockdError(
                "forbidden", f"a forecast for repo {repo_id!r} comes from a session in that repo"
            )
        if len(verdicts) > MAX_VERDICTS:
            raise LockdError("too_large", f"{len(verdicts)} verdicts; at most {MAX_VERDICTS}")
        now = self.reg.clock()
        live = {p.peer_id for p in self.reg.live_peers() if p.repo_id == repo_id}
        for v in verdicts:
            a, b = v["a"], v["b"]
            if a not in live or b not in live or a == b:
                raise invalid(
                    f"verdict between {a!r} and {b!r}: both must be live peers of this repo"
                )
        for v in verdicts:
            key = rules.verdict_key(repo_id, v["a"], v["b"])
            self.verdicts[key] = {
                "a": key[1],
                "b": key[2],
                "conflict": bool(v["conflict"]),
                "paths": [normalize_path(p) for p in v.get("paths", [])[:MAX_VERDICT_PATHS]],
                "note": str(v.get("note", ""))[:200],
                "at": now,
                "by": peer.peer_id,
            }
        if verdicts:
            self.reg.publish_dashboard("forecast", repo=repo_id)
        return len(verdicts)

    def verdicts_of(self, repo_id: str) -> list[dict[str, Any]]:
        return [v for (r, _a, _b), v in self.verdicts.items() if r == repo_id]

    # ---- a session ends ----------------------------------------------------
    def forget(self, peer_id: str) -> None:
        """A session that ends takes its activity, its overlaps and verdicts with it."""
        act = self.by_peer.pop(peer_id, None)
        self.told = {k for k in self.told if peer_id not in k[:2]}
        self.verdicts = {k: v for k, v in self.verdicts.items() if peer_id not in k[1:]}
        if act is not None:
            self.versions[act.repo_id] = self.versions.get(act.repo_id, 0) + 1
            self.reg.publish_dashboard("activity", repo=act.repo_id, event="ended")


def _checked_scan(scan: dict[str, str]) -> dict[str, str]:
    if len(scan) > rules.MAX_REPORT:
        raise LockdError("too_large", f"{len(scan)} paths; report at most {rules.MAX_REPORT}")
    out = {}
    for path, kind in scan.items():
        if kind not in rules.KINDS[1:]:
            raise invalid(f"kind {kind!r} of {path!r} is not one of: uncommitted, unpushed")
        out[normalize_path(path)] = kind
    return out
