r"""The one place that runs git. File lists always use `-z` and split on NUL,
so names with spaces, quotes, newlines and non-ASCII survive. Plain
subprocess, no GitPython: hooks call this on every commit.

File names are bytes to git, text to lockd (JSON, the database, the terminal).
A name that is UTF-8 is taken as it is. A name that is not (a Latin-1
`café.txt` is b"caf\xe9.txt") keeps every byte: each byte that is not part of
valid UTF-8 is written `\xNN` (Python's "backslashreplace"), so the name reads
`caf\xe9.txt` in hook output, answers, history and the dashboard, is stored
and sent like any other name, and claims match it as those characters
(`caf*` and `*.txt` cover it; the exact name as a pattern is `caf\\xe9.txt`,
since a backslash escapes in patterns). The one ambiguity: a UTF-8 name
spelled with a literal backslash, x and two hex digits reads the same."""

from __future__ import annotations

import os
import subprocess

from lockd.core.errors import LockdError


class Running:
    """A git command started now and read later, so a hook can run its git
    processes side by side instead of paying for each in turn."""

    def __init__(self, args: list[str], cwd: str | None = None, stdin: bool = False) -> None:
        self.args, self.cwd = args, cwd
        try:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            self.proc = None

    def finish(self, input: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes, bytes]:
        if self.proc is None:
            raise LockdError("unavailable", "git is not installed or not on PATH")
        try:
            out, err = self.proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise LockdError(
                "unavailable", f"git {self.args[0]} took over {timeout:.0f} s"
            ) from None
        return self.proc.returncode, out, err

    def output(self, input: bytes | None = None, timeout: float = 10.0) -> bytes:
        code, out, err = self.finish(input, timeout)
        if code != 0:
            why = err.decode(errors="replace").strip()
            what = " ".join(self.args[:3])
            raise LockdError("invalid", f"git {what} failed in {self.cwd}: {why}")
        return out


def run(args: list[str], cwd: str | None = None, input: bytes | None = None,
        timeout: float = 10.0) -> bytes:  # fmt: skip
    return Running(args, cwd, stdin=input is not None).output(input, timeout)


def path_text(raw: bytes) -> str:
    """A file name from git as lockd carries it (see the module docstring)."""
    return raw.decode("utf-8", "backslashreplace")


def zsplit(data: bytes) -> list[str]:
    return [path_text(p) for p in data.split(b"\0") if p]


def rev_parse_info(cwd: str) -> dict[str, str]:
    """toplevel, git_dir and git_common_dir as absolute real paths, in one call."""
    raw = run(["rev-parse", "--path-format=absolute", "--show-toplevel", "--git-dir",
               "--git-common-dir"], cwd=cwd)  # fmt: skip
    out = os.fsdecode(raw).splitlines()  # paths of this machine: as the OS spells them
    if len(out) != 3:
        raise LockdError("invalid", f"{cwd} is not inside a git work tree")
    top, git_dir, common = (os.path.realpath(p) for p in out)
    return {"toplevel": top, "git_dir": git_dir, "git_common_dir": common}


ROOT_CACHE = "lockd-root-commit"  # in the common dir: shared by worktrees, gone with the repo


def root_commit(cwd: str, common_dir: str, timeout: float = 10.0) -> str | None:
    """The oldest root commit of HEAD: what every clone of a repo shares, with
    or without a remote. Walking the history costs time in proportion to it,
    so the answer is kept in the common dir and read from there after the
    first time; the walk gets `timeout` seconds. None before the first
    commit, in a shallow clone (its roots are wherever the cut was), or if
    git took longer (found by a later, more patient caller)."""
    cache = os.path.join(common_dir, ROOT_CACHE)
    try:
        with open(cache) as fh:
            sha = fh.read().strip()
        if len(sha) in (40, 64) and all(c in "0123456789abcdef" for c in sha):
            return sha
    except OSError:
        pass
    if os.path.exists(os.path.join(common_dir, "shallow")):
        return None
    try:  # reverse-chronological: the last line is the oldest root
        out = run(["rev-list", "--max-parents=0", "HEAD"], cwd=cwd, timeout=timeout).split()
    except LockdError:  # no commit yet (unborn HEAD), or git too slow: no root key now
        return None
    if not out:
        return None
    sha = out[-1].decode()
    try:
        tmp = f"{cache}.{os.getpid()}"
        with open(tmp, "w") as fh:
            fh.write(sha + "\n")
        os.replace(tmp, cache)
    except OSError:  # a read-only .git: found again next time
        pass
    return sha


# The settings lockd reads, fetched with one `git config` for all of them:
# the hook pays for every git process it starts.
FACT_KEYS = ("remote.origin.url", "core.ignorecase", "lockd.hookmode", "core.hookspath")


def start_config_facts(cwd: str) -> Running:
    """Start reading FACT_KEYS; `config_facts_of` parses the answer."""
    pattern = "^(" + "|".join(k.replace(".", "\\.") for k in FACT_KEYS) + ")$"
    return Running(["config", "-z", "--get-regexp", pattern], cwd)


def config_facts_of(running: Running) -> dict[str, str]:
    """The values of FACT_KEYS that are set (last one wins, as in git)."""
    try:
        _code, out, _err = running.finish()  # exit 1: none of them is set
    except LockdError:
        return {}
    facts: dict[str, str] = {}
    for entry in out.split(b"\0"):
        key, _, value = entry.decode(errors="replace").partition("\n")
        if key:
            facts[key.lower()] = value
    return facts


def toplevel(cwd: str) -> str | None:
    try:
        return rev_parse_info(cwd)["toplevel"]
    except LockdError:
        return None


def config_get(cwd: str, key: str) -> str | None:
    """One setting, or None when unset (or git cannot say)."""
    try:
        code, out, _err = Running(["config", "--get", key], cwd).finish()
    except LockdError:
        return None
    value = out.decode(errors="replace").strip()
    return value if code == 0 and value else None


def config_unset(cwd: str, key: str) -> bool:
    """Remove a setting from the repo's config; False when it was not set there."""
    code, _out, err = Running(["config", "--unset-all", key], cwd).finish()
    if code not in (0, 5):  # 5: not set
        raise LockdError(
            "unavailable",
            f"git config --unset-all {key} failed: {err.decode(errors='replace').strip()}",
        )
    return code == 0


def _name_status(data: bytes) -> list[str]:
    """Paths from `--name-status -z`: both sides of renames and copies."""
    parts = zsplit(data)
    paths: dict[str, None] = {}
    i = 0
    while i < len(parts):
        status = parts[i]
        if status[:1] in ("R", "C"):
            paths.update(dict.fromkeys(parts[i + 1 : i + 3]))
            i += 3
        else:
            if i + 1 < len(parts):
                paths[parts[i + 1]] = None
            i += 2
    return list(paths)


def start_staged_paths(cwd: str) -> Running:
    """Added, modified, deleted, type-changed, renamed (both sides), copied;
    read with `staged_paths_of`. Without a commit, `git diff --cached` compares
    against HEAD, or against nothing on an unborn branch: one process either way."""
    return Running(["diff", "--cached", "--name-status", "-z", "-M", "-C", "--no-ext-diff"], cwd)


def staged_paths_of(running: Running) -> list[str]:
    return _name_status(running.output())


def staged_paths(cwd: str) -> list[str]:
    return staged_paths_of(start_staged_paths(cwd))


def unstaged_paths(cwd: str) -> list[str]:
    """Tracked files changed in the worktree but not staged: what `commit -a` adds."""
    return _name_status(run(["diff", "--name-status", "-z", "--no-ext-diff"], cwd=cwd))


def changed_paths_between(cwd: str, old: str, new: str) -> list[str]:
    return _name_status(run(["diff", "--name-status", "-z", "-M", "-C", "--no-ext-diff", old,
                             new], cwd=cwd))  # fmt: skip


def paths_of_new_commits(cwd: str, new: str, remote: str) -> list[str]:
    """Files changed by commits reachable from `new` but from no ref of `remote`.

    git hands a pre-push hook the remote's name, or its URL when pushed to a
    URL: then no remote-tracking ref is named by it, and commits any remote
    already has are left out instead of the whole history. One `git log`,
    not one process per commit."""
    named = bool(remote) and config_get(cwd, f"remote.{remote}.url") is not None
    known = f"--remotes={remote}" if named else "--remotes"
    out = run(["log", "--format=", "-z", "--name-status", "-M", "-C", "--root", "--no-ext-diff",
               new, "--not", known], cwd=cwd)  # fmt: skip
    return _name_status(out)


def ls_files(cwd: str) -> list[str]:
    """Tracked files plus untracked ones not ignored, repo-relative."""
    top = toplevel(cwd) or cwd
    return zsplit(run(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=top))


def hooks_dir(cwd: str) -> str:
    """Where git runs hooks for this checkout: honours core.hooksPath, and from a
    linked worktree gives the shared hooks dir git really uses."""
    info = rev_parse_info(cwd)
    custom = config_get(cwd, "core.hooksPath")
    if custom:
        custom = os.path.expanduser(custom)
        return custom if os.path.isabs(custom) else os.path.join(info["toplevel"], custom)
    out = run(["rev-parse", "--path-format=absolute", "--git-path", "hooks"], cwd=cwd)
    return os.fsdecode(out).strip()
