"""The merge forecast: would the work of two checkouts of one repo conflict
if merged now? Computed where the checkouts are (the MCP server, the CLI),
from `git merge-tree --write-tree` between snapshot commits of each checkout
(its HEAD plus its uncommitted work, built on a scratch index); only the
verdicts go to the broker.

Nothing a user owns changes: not an index (a copy is used), not a working
tree, not HEAD or a ref; git writes objects only. At most one refresh a
second per repo on this machine (a lock file in LOCKD_HOME), and unchanged
snapshots reuse their earlier verdicts."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from lockd.core.activity import may_conflict
from lockd.core.errors import LockdError
from lockd.local import config, git
from lockd.local.repo import identify

MIN_INTERVAL = 1.0  # seconds between refreshes of one repo, across processes
MAX_SNAPSHOTS = 2000
WORKERS = max(2, min(8, (os.cpu_count() or 2) * 2))


@dataclass
class Checkout:
    top: str
    git_dir: str
    common_dir: str
    commit: str | None = None  # its snapshot: HEAD plus uncommitted work
    key: tuple[Any, ...] = ()
    # What it changed since `base` (its merge base with its upstream or the
    # default branch), read each refresh: the pairs whose changes cannot meet
    # skip the merge (and the snapshot) altogether.
    uncommitted: list[str] = field(default_factory=list)
    status: bytes = b""
    base: str | None = None
    changed: set[str] = field(default_factory=set)
    head_key: tuple[Any, ...] = ()
    unpushed: list[str] = field(default_factory=list)


class Forecaster:
    """One per process: remembers checkouts, snapshots and verdicts."""

    def __init__(self, keys: tuple[str, ...] = ()) -> None:
        self.keys = keys  # the repo's keys as this checkout knows them (lockd.core.repos)
        self._checkouts: dict[str, Checkout | None] = {}
        self._merges: dict[tuple[str, str], tuple[bool, list[str]]] = {}
        self.last_timing: dict[str, float] = {}
        self._scratch: str | None = None  # our own object store: snapshots and merges
        self._made = 0  # snapshots written into it: past MAX_SNAPSHOTS it starts afresh

    @property
    def objects(self) -> str:
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="lockd-forecast-")
            os.makedirs(os.path.join(self._scratch, "objects", "pack"))
            atexit.register(shutil.rmtree, self._scratch, True)
        return os.path.join(self._scratch, "objects")

    def close(self) -> None:
        """Drop the scratch store (and with it every cached snapshot)."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch = None
        self._made = 0
        self._merges.clear()
        for co in self._checkouts.values():
            if co is not None:
                co.commit, co.key = None, ()

    # ---- which checkouts are here --------------------------------------
    def _checkout(self, top: str, repo_id: str) -> Checkout | None:
        """A peer's checkout if it is on this machine and of this repo."""
        if top not in self._checkouts:
            found = None
            if os.path.isdir(top):
                try:
                    info = identify(top)
                    same = info.repo_id == repo_id or bool(set(info.keys) & set(self.keys))
                    if info.is_git and same and info.root == top:
                        found = Checkout(top, git.git_dir_of(top), info.common_dir or "")
                except LockdError:
                    found = None
            self._checkouts[top] = found
        return self._checkouts[top]

    # ---- a refresh ------------------------------------------------------
    def compute(self, repo_id: str, peers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Verdicts for every two peers in different checkouts here. `peers`:
        {peer_id, checkout} as the broker lists them."""
        started = time.perf_counter()
        if self._made > MAX_SNAPSHOTS:  # a long session: bound the scratch store's size
            self.close()
        _ = self.objects  # made here, once: the threads below all write into it
        with ThreadPoolExecutor(WORKERS) as pool:
            tops = sorted({p["checkout"] for p in peers if p.get("checkout")})
            found = dict(
                zip(tops, pool.map(lambda t: self._checkout(t, repo_id), tops), strict=True)
            )
            where: dict[str, list[str]] = {}
            for p in peers:
                if found.get(p.get("checkout") or "") is not None:
                    where.setdefault(p["checkout"], []).append(p["peer_id"])
            checkouts = [c for c in (found[t] for t in sorted(where)) if c is not None]
            read = [c for c, ok in zip(checkouts, pool.map(self._read, checkouts), strict=True)
                    if ok]  # fmt: skip
            pairs = list(combinations(read, 2))
            merge = [(a, b) for a, b in pairs if _may_conflict(a, b)]
            needed = list({id(c): c for pair in merge for c in pair}.values())
            list(pool.map(self._snapshot, needed))
            snapped = time.perf_counter()
            merge = [(a, b) for a, b in merge if a.commit and b.commit]
            merged = dict(zip(map(_ids, merge), pool.map(self._merge, merge), strict=True))
        unknown = {_ids(p) for p in pairs if _may_conflict(*p)} - set(merged)
        known = [p for p in pairs if _ids(p) not in unknown]  # no snapshot: no verdict
        verdicts = []
        for a, b in known:
            conflict, paths = merged.get(_ids((a, b)), (False, []))
            for pa in where[a.top]:
                for pb in where[b.top]:
                    verdicts.append(_verdict(pa, pb, conflict, paths))
        done = time.perf_counter()
        self.last_timing = {
            "snapshots_ms": (snapped - started) * 1000,
            "merges_ms": (done - snapped) * 1000,
            "total_ms": (done - started) * 1000,
            "checkouts": len(checkouts),
            "pairs": len(pairs),
            "merged": len(merged),
        }
        return verdicts

    def _read(self, co: Checkout) -> bool:
        """Its status, and (while HEAD and the refs stay) its base and the
        files its commits since then change. False: unreadable now."""
        try:
            branch, upstream, co.uncommitted, co.status = git.status_of(git.start_status(co.top))
            head_key = (git.state_stamp(co.git_dir), _refs_stamp(co.common_dir), branch)
            if head_key != co.head_key:
                co.base = git.base_of(co.top, branch, upstream, co.common_dir)
                co.unpushed = git.unpushed_paths(co.top, co.base) if co.base else []
                co.head_key = head_key
        except LockdError:
            co.head_key, co.base = (), None
            return False
        co.changed = {*co.uncommitted, *co.unpushed}
        return True

    def _snapshot(self, co: Checkout) -> None:
        """The checkout's work as one commit; reused while its status, the
        changed files' stat data and its git stamps stay the same."""
        try:
            paths, raw = co.uncommitted, co.status
            key = (git.state_stamp(co.git_dir), raw, _stats(co.top, paths))
            if key == co.key and co.commit:
                return
            env = git.object_env(self.objects, [os.path.join(co.common_dir, "objects")])
            scratch = os.path.join(os.path.dirname(self.objects), f"index-{threading.get_ident()}")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
            try:
                co.commit = git.snapshot_commit(co.top, co.git_dir, paths, scratch, env)
                self._made += 1
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(scratch)
            co.key = key
        except LockdError:
            co.commit, co.key = None, ()

    def _merge(self, pair: tuple[Checkout, Checkout]) -> tuple[bool, list[str]]:
        a, b = pair
        assert a.commit and b.commit
        cached = self._merges.get((a.commit, b.commit))
        if cached is not None:
            return cached
        stores = dict.fromkeys(os.path.join(c.common_dir, "objects") for c in (a, b))
        env = git.object_env(self.objects, list(stores))
        try:
            result = git.merge_tree_of(git.start_merge_tree(a.common_dir, a.commit, b.commit, env))
        except LockdError as exc:  # unrelated histories: no merge to forecast
            return False, [f"(no forecast: {exc.message[:120]})"]
        if len(self._merges) > 10_000:
            self._merges.clear()
        self._merges[(a.commit, b.commit)] = result
        return result


def _may_conflict(a: Checkout, b: Checkout) -> bool:
    """Changes measured from different bases say nothing of each other: merge."""
    if a.base is None or a.base != b.base:
        return True
    return may_conflict(a.changed, b.changed)


def _ids(pair: tuple[Checkout, Checkout]) -> tuple[str, str]:
    return pair[0].top, pair[1].top


def _refs_stamp(common_dir: str) -> tuple[int, ...]:
    """Branches and remote-tracking refs moved (a fetch, a push, a commit elsewhere)."""
    out = []
    for name in ("packed-refs", "FETCH_HEAD", "refs/heads", "refs/remotes"):
        try:
            out.append(os.stat(os.path.join(common_dir, name)).st_mtime_ns)
        except OSError:
            out.append(0)
    return tuple(out)


def _verdict(a: str, b: str, conflict: bool, paths: list[str]) -> dict[str, Any]:
    note = paths[0] if paths and paths[0].startswith("(no forecast") else ""
    return {
        "a": a,
        "b": b,
        "conflict": conflict,
        "paths": [] if note else paths[:50],
        "note": note,
    }


def _stats(top: str, paths: list[str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(os.path.join(top, path))
            out.append((path, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((path, 0, -1))
    return tuple(out)


@contextlib.contextmanager
def gate(repo_id: str, min_interval: float = MIN_INTERVAL) -> Any:
    """Yields True when this process may refresh the repo's forecast now:
    nobody on this machine is refreshing it and the last refresh is at least
    `min_interval` old. A lock file and its time, under LOCKD_HOME."""
    folder = config.home() / "forecast"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(repo_id.encode()).hexdigest()[:16] + ".lock")
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            fh.seek(0)
            last = float(fh.read().strip() or 0)
        except ValueError:
            last = 0.0
        if time.time() - last < min_interval:
            yield False
            return
        try:
            yield True
        finally:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{time.time():.3f}")
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def matrix(view: dict[str, Any]) -> dict[str, Any]:
    """The broker's activity view as a peers x peers matrix: for each pair,
    `conflict`, `clean` or `unknown` (no verdict: not both checkouts here,
    or one checkout shared by both), with the conflicting files."""
    peers = view.get("peers", [])
    verdicts = {(v["a"], v["b"]): v for v in view.get("verdicts", [])}
    rows = []
    for pa in peers:
        cells = []
        for pb in peers:
            if pa["peer_id"] == pb["peer_id"]:
                cells.append({"peer_id": pb["peer_id"], "verdict": "self", "paths": []})
                continue
            key = (min(pa["peer_id"], pb["peer_id"]), max(pa["peer_id"], pb["peer_id"]))
            v = verdicts.get(key)
            state = "unknown" if v is None else ("conflict" if v["conflict"] else "clean")
            if pa.get("checkout") and pa.get("checkout") == pb.get("checkout"):
                state = "same checkout"
            cells.append(
                {"peer_id": pb["peer_id"], "verdict": state, "paths": v["paths"] if v else []}
            )
        rows.append({"peer_id": pa["peer_id"], "name": pa["name"], "cells": cells})
    return {"repo": view.get("repo"), "peers": peers, "verdicts": view.get("verdicts", []),
            "matrix": rows}  # fmt: skip


def refresh_sync(
    call: Any,
    repo_id: str,
    forecaster: Forecaster | None = None,
    wait: float = 5.0,
    keys: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The CLI's refresh: wait (at most `wait` s) for the repo's gate, compute,
    share the verdicts, and answer the broker's view as a matrix. `call`
    sends one `Req`."""
    from lockd.client.api import Api

    deadline = time.monotonic() + wait
    while True:
        view = call(Api.activity(repo_id))
        with gate(repo_id) as may:
            if may:
                verdicts = (forecaster or Forecaster(keys)).compute(repo_id, view["peers"])
                if verdicts:
                    call(Api.put_forecast(repo_id, verdicts))
                    view = call(Api.activity(repo_id))
                break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return matrix(view)
