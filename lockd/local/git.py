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

import contextlib
import os
import subprocess

from lockd.core.errors import LockdError


class Running:
    """A git command started now and read later, so a hook can run its git
    processes side by side instead of paying for each in turn."""

    def __init__(
        self,
        args: list[str],
        cwd: str | None = None,
        stdin: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.args, self.cwd = args, cwd
        try:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                env=env,
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
            what = " ".join(_command_words(self.args)[:3])
            raise LockdError("invalid", f"git {what} failed in {self.cwd}: {why}")
        return out


def _command_words(args: list[str]) -> list[str]:
    """The git command and its first arguments, without global options."""
    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-c", "--git-dir"):
            skip = True
        elif not arg.startswith("--no-optional") or words:
            words.append(arg)
    return words


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


# ---- activity: what a checkout changed (lockd/core/activity.py) -------------
# `--no-optional-locks`: a plain `git status` refreshes and rewrites the index's
# stat data as it goes; lockd only looks, and must never change a checkout's
# index (GIT_OPTIONAL_LOCKS=0 is the same switch).
READ_ONLY = ["--no-optional-locks", "-c", "gc.auto=0", "-c", "core.fsmonitor=false"]


def state_stamp(git_dir: str) -> tuple[int, ...]:
    """Change times of what a commit, a checkout or an add rewrites (HEAD, the
    index, the reflog): cheap, no process. Edits to files git does not yet
    index change none of these, so callers also rescan on a timer."""
    out = []
    for name in ("HEAD", "index", "logs/HEAD"):
        try:
            out.append(os.stat(os.path.join(git_dir, name)).st_mtime_ns)
        except OSError:
            out.append(0)
    return tuple(out)


def _status_entries(data: bytes) -> tuple[str, list[str]]:
    """`status --porcelain=v1 -z --branch`: (the `## …` branch line, paths),
    both sides of a rename."""
    parts = data.split(b"\0")
    head = ""
    paths: dict[str, None] = {}
    i = 0
    while i < len(parts):
        entry = parts[i]
        i += 1
        if not entry:
            continue
        if entry.startswith(b"## "):
            head = path_text(entry[3:])
            continue
        paths[path_text(entry[3:])] = None
        if entry[:1] in (b"R", b"C"):  # the source path follows as its own entry
            if i < len(parts) and parts[i]:
                paths[path_text(parts[i])] = None
            i += 1
    return head, list(paths)


def branch_of(head: str) -> tuple[str, str]:
    """(branch, upstream) from a status `## ` line; "" where there is none.
    `main...origin/main [ahead 1]`, `feature`, `HEAD (no branch)`,
    `No commits yet on main`."""
    if head.startswith("No commits yet on "):
        return head[len("No commits yet on ") :], ""
    if head.startswith("HEAD (no branch)"):
        return "", ""
    name, _, rest = head.partition("...")
    return name, rest.split(" [", 1)[0].strip()


def start_status(top: str) -> Running:
    return Running([*READ_ONLY, "status", "--porcelain=v1", "-z", "--branch",
                    "--untracked-files=all", "--no-renames"], top)  # fmt: skip


def status_of(running: Running) -> tuple[str, str, list[str], bytes]:
    """(branch, upstream, uncommitted paths, the raw answer) of `start_status`."""
    raw = running.output()
    head, paths = _status_entries(raw)
    branch, upstream = branch_of(head)
    return branch, upstream, paths, raw


def git_dir_of(top: str) -> str:
    """A checkout's own git dir: `.git` itself, or where a linked worktree's
    `.git` file points; read without a process (rev-parse when unusual)."""
    dot = os.path.join(top, ".git")
    if os.path.isdir(dot):
        return os.path.realpath(dot)
    try:
        with open(dot) as fh:
            line = fh.readline().strip()
    except OSError:
        line = ""
    if line.startswith("gitdir: "):
        return os.path.realpath(os.path.join(top, line[len("gitdir: ") :]))
    return rev_parse_info(top)["git_dir"]


def ref_exists(common_dir: str, ref: str) -> bool:
    """A full ref name, loose or packed, looked up without a process."""
    if os.path.exists(os.path.join(common_dir, ref)):
        return True
    try:
        with open(os.path.join(common_dir, "packed-refs"), "rb") as fh:
            return any(line.rstrip(b"\n").endswith(b" " + ref.encode()) for line in fh)
    except OSError:
        return False


def base_of(top: str, branch: str, upstream: str, common_dir: str | None = None) -> str | None:
    """What "unpushed" is measured from: the merge base of HEAD with the
    branch's upstream, else with the default branch (origin's HEAD, main,
    master) when the checkout is on another branch. None: nothing to compare."""
    candidates = [upstream] if upstream else []
    for ref in ("refs/remotes/origin/HEAD", "refs/heads/main", "refs/heads/master"):
        if ref != f"refs/heads/{branch}":
            candidates.append(ref)
    if common_dir is not None:  # skip the refs that are not there: a process each
        candidates = candidates[: 1 if upstream else 0] + [
            r for r in candidates[1 if upstream else 0 :] if ref_exists(common_dir, r)
        ]
    if branch in ("main", "master") and not upstream:
        candidates.append("HEAD")  # the default branch itself, never pushed: all is local
    for ref in candidates:
        code, out, _err = Running(["merge-base", "HEAD", ref], top).finish()
        if code == 0 and out.strip():
            return out.decode().strip()
    return None


def unpushed_paths(top: str, base: str) -> list[str]:
    """Files that commits since `base` change (both sides of a rename)."""
    out = run([*READ_ONLY, "diff", "--name-status", "-z", "--no-ext-diff", "-M", base, "HEAD"],
              cwd=top)  # fmt: skip
    return _name_status(out)


# ---- the merge forecast: snapshots and merge-tree, touching no checkout -----
# A fixed identity and date: the same tree on the same parent is the same
# commit, so a forecast of unchanged work hits its cache.
SNAPSHOT_ENV = {
    "GIT_AUTHOR_NAME": "lockd forecast",
    "GIT_AUTHOR_EMAIL": "lockd@localhost",
    "GIT_AUTHOR_DATE": "@0 +0000",
    "GIT_COMMITTER_NAME": "lockd forecast",
    "GIT_COMMITTER_EMAIL": "lockd@localhost",
    "GIT_COMMITTER_DATE": "@0 +0000",
}


def head_commit(top: str) -> str | None:
    code, out, _err = Running(["rev-parse", "-q", "--verify", "HEAD^{commit}"], top).finish()
    return out.decode().strip() if code == 0 else None


def object_env(scratch_objects: str, alternates: list[str]) -> dict[str, str]:
    """Reads from the checkouts' object stores, writes to a scratch one: a
    forecast adds nothing, not even objects, to anyone's repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP}
    env.update(SNAPSHOT_ENV)
    env["GIT_OBJECT_DIRECTORY"] = scratch_objects
    env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = os.pathsep.join(alternates)
    return env


_KEEP = ("GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_EXEC_PATH")


def snapshot_commit(
    top: str, git_dir: str, paths: list[str], scratch_index: str, env: dict[str, str]
) -> str | None:
    """A commit of the checkout's work as it is, uncommitted changes too,
    built beside it: a copy of its index (`scratch_index`, a file of ours)
    takes the changed paths, `write-tree` and `commit-tree` write into the
    scratch object store of `env` (see `object_env`), and nothing of the
    checkout changes: not its index, working tree, HEAD, refs or objects.
    None on an unborn branch."""
    head = head_commit(top)
    if head is None or not paths:
        return head
    import shutil

    with contextlib.suppress(FileNotFoundError):
        shutil.copyfile(os.path.join(git_dir, "index"), scratch_index)
    env = {**env, "GIT_INDEX_FILE": scratch_index}
    listing = b"\0".join(os.fsencode(p) for p in paths) + b"\0"
    _run_env(["add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"], top, env, listing)
    tree = _run_env(["write-tree"], top, env).decode().strip()
    message = b"lockd forecast snapshot\n"
    out = _run_env(["commit-tree", tree, "-p", head], top, env, message)
    return out.decode().strip()


def _run_env(args: list[str], cwd: str, env: dict[str, str], input: bytes | None = None) -> bytes:
    proc = Running([*READ_ONLY, *args], cwd, stdin=input is not None, env=env)
    return proc.output(input)


def start_merge_tree(git_dir: str, ours: str, theirs: str, env: dict[str, str]) -> Running:
    """`git merge-tree --write-tree` of two commits: the merge git would do,
    computed in object stores alone (writing into the scratch one of `env`)."""
    return Running(["--git-dir", git_dir, *READ_ONLY, "merge-tree", "--write-tree",
                    "--name-only", "--no-messages", "-z", ours, theirs], None, env=env)  # fmt: skip


def merge_tree_of(running: Running) -> tuple[bool, list[str]]:
    """(conflicts, the conflicted paths). Exit 1 is git's "conflicts"."""
    code, out, err = running.finish()
    if code not in (0, 1) or not out:  # exit 1 also means "not something we can merge"
        why = err.decode(errors="replace").strip()
        raise LockdError("invalid", f"git merge-tree failed: {why}")
    paths = zsplit(out)[1:]  # the merged tree's id first
    return code == 1, list(dict.fromkeys(paths))
