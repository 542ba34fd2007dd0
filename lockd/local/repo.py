"""Repo identity: which repository is a checkout, whichever checkout it is seen
from. Linked worktrees share a git common dir; separate clones share a
normalized `origin` URL or a root commit; outside git, the directory is the
repo. The keys and how the broker unifies them: lockd.core.repos.

`normalize_remote_url` beside the one function that asks git (`identify`),
through git.
"""

from __future__ import annotations

import os
import re
import sys
from collections import namedtuple

from lockd.core.errors import LockdError, invalid
from lockd.core.repos import keys_of, repo_id_for
from lockd.local import git

__all__ = ["RepoInfo", "hook_mode", "identify", "normalize_remote_url", "relpath_in_repo",
           "repo_id_for"]  # fmt: skip

SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")
DEFAULT_PORTS = {"ssh": "22", "git+ssh": "22", "ssh+git": "22", "https": "443", "http": "80",
                 "git": "9418"}  # fmt: skip


class RepoInfo(
    namedtuple(
        "RepoInfo",
        "repo_id root common_dir origin ignorecase is_git hook_mode keys",
        defaults=(False, True, None, ()),
    )
):
    """A plain namedtuple (not a dataclass or typing.NamedTuple), to keep
    `inspect` and `typing` off the git hook's path."""

    __slots__ = ()
    repo_id: str
    root: str  # this checkout's root (worktree root), real path
    common_dir: str | None
    origin: str | None  # normalized
    ignorecase: bool
    is_git: bool
    hook_mode: str | None  # `git config lockd.hookMode`, read with the rest
    keys: tuple[str, ...]  # every key of the repo, the steadiest first (lockd.core.repos)


def _strip_path(path: str) -> str:
    path = path.strip("/")
    while path.endswith("/"):
        path = path[:-1]
    if path.endswith(".git"):
        path = path[:-4]
    return path.rstrip("/")


def normalize_remote_url(url: str, base: str | None = None) -> str:
    """`git@github.com:Org/Repo.git`, `ssh://git@github.com:22/Org/Repo`,
    `https://user:tok@github.com/Org/Repo.git/` all give `github.com/Org/Repo`;
    local paths give `file:<real path without .git>`."""
    url = url.strip()
    if not url:
        raise invalid("remote URL is empty")
    if "://" in url:
        import urllib.parse

        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return "file:" + _local(urllib.parse.unquote(parts.path), base)
        host = (parts.hostname or "").lower()
        default = DEFAULT_PORTS.get(scheme)
        port = f":{parts.port}" if parts.port and str(parts.port) != default else ""
        return f"{host}{port}/{_strip_path(urllib.parse.unquote(parts.path))}"
    m = SCP_LIKE.match(url)
    if m and not os.path.isabs(url) and "/" not in m.group("host"):
        return f"{m.group('host').lower()}/{_strip_path(m.group('path'))}"
    return "file:" + _local(url, base)


def _local(path: str, base: str | None) -> str:
    if not os.path.isabs(path):
        path = os.path.join(base or os.getcwd(), path)
    real = os.path.realpath(path)
    if real.endswith("/.git"):
        real = real[:-5]
    elif real.endswith(".git"):
        real = real[:-4]
    return real.rstrip("/") or "/"


def identify(cwd: str, root_timeout: float = 10.0) -> RepoInfo:
    """Two git processes, side by side: rev-parse for the roots, one config
    read for the rest; and the root commit, from its cache in the common dir
    (found with one more git process the first time, given `root_timeout`
    seconds: the hooks, on every commit, give it little)."""
    cwd = os.path.realpath(cwd)
    config = git.start_config_facts(cwd)  # runs beside rev-parse
    try:
        info = git.rev_parse_info(cwd)
    except LockdError:
        git.config_facts_of(config)
        keys = keys_of(None, None, None, cwd)
        return RepoInfo(repo_id_for(None, None, cwd), cwd, None, None, False, False, None, keys)
    top = info["toplevel"]
    facts = git.config_facts_of(config)
    raw_origin = facts.get("remote.origin.url")
    origin = normalize_remote_url(raw_origin, base=top) if raw_origin else None
    ignorecase = facts.get("core.ignorecase", "").lower() == "true"
    common = info["git_common_dir"]
    root_commit = git.root_commit(cwd, common, root_timeout)
    return RepoInfo(
        repo_id_for(origin, common, top),
        top,
        common,
        origin,
        ignorecase,
        hook_mode=facts.get("lockd.hookmode"),
        keys=keys_of(common, root_commit, origin, top),
    )


PATH_MAX = 4096  # bytes, as on Linux


def relpath_in_repo(info: RepoInfo, path: str, cwd: str | None = None) -> str:
    """An absolute or cwd-relative file path as a repo-relative POSIX path: how
    the CLI, the MCP tools and the edit guard all read a path they are given."""
    if not path.strip():
        raise invalid("path is empty")
    # Both once left as errors without a message: the OS refuses a NUL
    # (ValueError), and a path beyond PATH_MAX made list_locks' URL too long.
    if "\x00" in path:
        raise invalid(f"path {path[:60]!r} contains a NUL byte; name a file in the repo")
    if len(path.encode()) > PATH_MAX:
        raise invalid(f"path is {len(path.encode())} bytes; the limit is {PATH_MAX}")
    full = path if os.path.isabs(path) else os.path.join(cwd or os.getcwd(), path)
    full = os.path.normpath(full)
    root = info.root.rstrip("/")
    for candidate in (full, os.path.realpath(full)):
        if candidate == root:
            raise invalid(f"{path!r} is the checkout itself; name a file inside it")
        if candidate.startswith(root + "/"):
            return candidate[len(root) + 1 :]
    raise invalid(f"{path!r} is outside the checkout {info.root}; name a file inside it")


MODES = ("warn", "block")


def hook_mode(cwd: str, configured: str | None = None) -> str:
    """LOCKD_HOOK_MODE, else `lockd.hookMode` (pass it when already read), else warn."""
    if configured is None and not os.environ.get("LOCKD_HOOK_MODE"):
        configured = git.config_get(cwd, "lockd.hookMode")
    mode = os.environ.get("LOCKD_HOOK_MODE") or configured or "warn"
    mode = mode.strip().lower()
    if mode not in MODES:
        print(f"lockd: hook mode {mode!r} is not warn or block; using warn", file=sys.stderr)
        return "warn"
    return mode
