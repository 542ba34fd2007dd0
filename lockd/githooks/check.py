"""What a commit or push touches, who is committing, the check against the
broker and the clash lines: the git hooks' run, on every commit.

Kept light: stdlib, the git module and the sync client only (no FastAPI,
pydantic or GitPython).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.local import git
from lockd.local.repo import RepoInfo, hook_mode, identify
from lockd.local.sessions import committer

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not on the hook's own path
    from typing import Any

HOOK_TYPES = ("pre-commit", "pre-push")
ZERO = "0" * 40
CHUNK = 1000
# A repo's root commit is found once and kept (lockd/local/git.py); on a commit
# the walk may take this long, so a huge history never holds a commit up.
HOOK_ROOT_SECONDS = 0.5


def push_paths(cwd: str, remote: str, stdin: str) -> list[str]:
    """Files changed by the commits being pushed (git's pre-push stdin lines)."""
    seen: dict[str, None] = {}
    old, new = os.environ.get("PRE_COMMIT_FROM_REF"), os.environ.get("PRE_COMMIT_TO_REF")
    if not stdin.strip() and old and new:  # the pre-commit framework passes refs by env
        stdin = f"HEAD {new} ref {old}"
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        _local_ref, local_sha, _remote_ref, remote_sha = parts
        if set(local_sha) == {"0"}:
            continue  # deleting a remote branch touches no files
        if set(remote_sha) == {"0"}:
            paths = git.paths_of_new_commits(cwd, local_sha, remote)
        else:
            try:
                paths = git.changed_paths_between(cwd, remote_sha, local_sha)
            except LockdError:  # remote tip unknown here (e.g. force push): new commits only
                paths = git.paths_of_new_commits(cwd, local_sha, remote)
        seen.update(dict.fromkeys(paths))
    return list(seen)


def _push_remote(argv: list[str]) -> str:
    """git passes the remote (name or URL) as the first argument; the pre-commit
    framework passes none and says it in PRE_COMMIT_REMOTE_NAME."""
    return (argv[0] if argv else "") or os.environ.get("PRE_COMMIT_REMOTE_NAME") or "origin"


def check(
    client: Client,
    repo_id: str,
    paths: list[str],
    viewer: str | None,
    keys: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(paths), CHUNK):
        req = Api.check(repo_id, paths[i : i + CHUNK], viewer, keys)
        out.extend(client.call(req)["paths"])
    return out


def report(results: list[dict[str, Any]], who: str | None) -> tuple[list[str], list[str], bool]:
    """(clash lines, reminder lines, any exclusive clash)."""
    held, reminders = [], []
    for entry in results:
        for c in entry["claims"]:
            if c["mine"]:
                reminders.append(
                    f"  {entry['path']}: your claim {c['pattern']} ({c['intent_id']})"
                    " — release when done: lockd release " + c["intent_id"]
                )
            else:
                held.append((entry["path"], c))
    if not held:  # most commits: the renderer is not even loaded
        return [], reminders, False
    from lockd.core import render

    now = time.time()
    clashes = ["  " + render.path_claim(path, c, now) for path, c in held]
    return clashes, reminders, any(c["mode"] == "exclusive" for _, c in held)


def run(hook: str, argv: list[str], stdin: str = "", cwd: str | None = None) -> int:
    """The hook itself. Never blocks on a broker it cannot reach."""
    cwd = cwd or os.getcwd()
    # The staged diff runs while identify() asks git for the roots and config.
    staged = git.start_staged_paths(cwd) if hook == "pre-commit" else None
    try:
        repo = identify(cwd, root_timeout=HOOK_ROOT_SECONDS)
        if not repo.is_git:
            raise LockdError("invalid", f"{cwd} is not inside a git work tree")
        repo_id = repo.repo_id
        paths = (
            git.staged_paths_of(staged)
            if staged is not None
            else push_paths(cwd, _push_remote(argv), stdin)
        )
    except LockdError as exc:
        print(f"lockd: {hook} skipped: {exc.message}", file=sys.stderr)
        return 0
    if not paths:
        return 0
    who = committer()
    client = Client(timeout=2.0)
    try:
        results, who = _check_as(client, repo, paths, who)
    except LockdError as exc:
        if exc.kind == "unavailable":
            print(
                f"lockd: broker not reachable at {client.url}; {hook} not checked", file=sys.stderr
            )
            return 0
        if exc.kind == "not_found" and who and who.get("override"):
            # The user said who commits, and the broker knows no such peer: a
            # check as nobody would call the user's own claims others'.
            print(
                f"lockd: LOCKD_PEER={who['peer_id']!r} is no peer the broker knows; set it to "
                "an id or name from `lockd peers`, or unset it. Or bypass once with --no-verify.",
                file=sys.stderr,
            )
            return 1
        print(f"lockd: {hook} not checked: {exc.message}", file=sys.stderr)
        return 0
    viewer = who["peer_id"] if who else None
    clashes, reminders, exclusive = report(results, viewer)
    mode = hook_mode(cwd, repo.hook_mode or "")
    refused = bool(clashes and exclusive and mode == "block")
    if clashes:
        what = "this commit touches" if hook == "pre-commit" else "this push carries"
        print(f"lockd: {what} files other peers have claimed:", file=sys.stderr)
        print("\n".join(clashes), file=sys.stderr)
        _tell_holders(client, repo_id, results, hook, who, refused)
    seen = _activity_lines(results, repo.root)
    if seen:
        print("lockd: other live sessions are changing these files too:", file=sys.stderr)
        print("\n".join(seen), file=sys.stderr)
    if reminders:
        print("lockd: reminder, you claim:", file=sys.stderr)
        print("\n".join(reminders), file=sys.stderr)
    if refused:
        holders = sorted({c["peer_name"] for e in results for c in e["claims"] if not c["mine"]})
        print(
            f"lockd: {hook} refused (lockd.hookMode=block). Ask the holders "
            f"(lockd send {holders[0]} '...'), or bypass once with --no-verify.",
            file=sys.stderr,
        )
        return 1
    return 0


def _check_as(
    client: Client, repo: RepoInfo, paths: list[str], who: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The check, as the committer; a session or person peer the broker does
    not know (its database was replaced) checks as nobody instead. Only a
    LOCKD_PEER the user set is worth stopping for."""
    viewer = who["peer_id"] if who else None
    try:
        return check(client, repo.repo_id, paths, viewer, repo.keys), who
    except LockdError as exc:
        if exc.kind != "not_found" or not who or who.get("override"):
            raise
    return check(client, repo.repo_id, paths, None, repo.keys), None


def _activity_lines(results: list[dict[str, Any]], checkout: str) -> list[str]:
    """Others' activity on the committed files (most commits: none at all)."""
    if not any(e.get("activity") for e in results):
        return []
    from lockd.core.activity import news

    return [
        f"  {e['path']}: {a['text']}"
        for e in results
        for a in news(e.get("activity") or [], checkout)
    ]


def _tell_holders(
    client: Client,
    repo_id: str,
    results: list[dict[str, Any]],
    hook: str,
    who: dict[str, Any] | None,
    refused: bool,
) -> None:
    ids = sorted({c["intent_id"] for e in results for c in e["claims"] if not c["mine"]})
    paths = [e["path"] for e in results if any(not c["mine"] for c in e["claims"])]
    committer_id = who["peer_id"] if who else None
    # Telling holders is a courtesy; the hook's verdict stands either way.
    with contextlib.suppress(LockdError):
        client.call(Api.commit_notice(repo_id, ids, paths, hook, committer_id, refused))


# ---- install ------------------------------------------------------------------


def run_with_stdin(hook: str, argv: list[str]) -> int:
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    return run(hook, argv, stdin)
