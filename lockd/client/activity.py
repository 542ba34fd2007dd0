"""A checkout's activity as its session reports it: uncommitted changes (git
status) and unpushed ones (commits since the merge base with the branch's
upstream, else the default branch), read only when something changed.
Repo-relative paths only: contents never leave the checkout."""

from __future__ import annotations

import time
from typing import Any

from lockd.core.activity import MAX_PATHS
from lockd.core.errors import LockdError
from lockd.local import git
from lockd.local.repo import RepoInfo

RESCAN_SECONDS = 30.0  # edits git has not indexed change no stamp: look this often anyway


class Scanner:
    """Reads the checkout's git state when its stamp moved (a commit, an add, a
    checkout) or RESCAN_SECONDS passed; says whether the scan changed."""

    def __init__(self, repo: RepoInfo, rescan_seconds: float = RESCAN_SECONDS) -> None:
        self.repo = repo
        self.rescan = rescan_seconds
        self._git_dir: str | None = None
        self._stamp: tuple[int, ...] | None = None
        self._at = 0.0
        self._last: dict[str, Any] | None = None

    @property
    def git_dir(self) -> str:
        if self._git_dir is None:
            self._git_dir = git.rev_parse_info(self.repo.root)["git_dir"]
        return self._git_dir

    def due(self, now: float | None = None) -> bool:
        if not self.repo.is_git:
            return False
        now = time.monotonic() if now is None else now
        return git.state_stamp(self.git_dir) != self._stamp or now - self._at >= self.rescan

    def forget(self) -> None:
        """The next scan reports even if nothing changed."""
        self._last = None

    def scan(self) -> dict[str, Any] | None:
        """The scan body for `Api.report_activity`, or None when unchanged."""
        self._stamp, self._at = git.state_stamp(self.git_dir), time.monotonic()
        body = read_changes(self.repo.root, self.repo.common_dir)
        if body == self._last:
            return None
        self._last = body
        return body


def read_changes(top: str, common_dir: str | None = None) -> dict[str, Any]:
    """uncommitted, unpushed (each at most MAX_PATHS), total, branch."""
    branch, upstream, uncommitted, _raw = git.status_of(git.start_status(top))
    unpushed: list[str] = []
    try:
        base = git.base_of(top, branch, upstream, common_dir)
        if base is not None:
            unpushed = git.unpushed_paths(top, base)
    except LockdError:  # an unborn branch, a shallow clone: what status says is enough
        unpushed = []
    mine = set(uncommitted)
    unpushed = [p for p in unpushed if p not in mine]
    total = len(uncommitted) + len(unpushed)
    room = max(0, MAX_PATHS - len(uncommitted[:MAX_PATHS]))
    return {
        "uncommitted": sorted(uncommitted)[:MAX_PATHS],
        "unpushed": sorted(unpushed)[:room],
        "total": total,
        "branch": branch,
    }
