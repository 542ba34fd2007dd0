"""The git hooks as users meet them: `lockd hooks install` in real checkouts,
then real `git commit` and `git push` through the installed hooks against a
real broker. A claim is only useful if the commit that breaks it says so."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.githooks.install import MARKER
from lockd.local.processes import process_start_time
from lockd.local.repo import identify
from lockd.testing import Broker, free_port
from tests.gitutil import add_worktree, bare_origin, clone, git, make_repo, run_git
from tests.polling import wait_for

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]
REASON = "refactoring auth"
SUMMARY = "rewriting the API layer"
SHARED_BROKER = True  # `broker` is the module's one (see conftest): each test has its own repo
REPO_FILES = {
    "src/api/app.py": "a\n",
    "src/db.py": "d\n",
    "docs/guide.md": "g\n",
    "README.md": "r\n",
}


def lockd(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "lockd", *args], cwd=cwd, env=env, text=True, capture_output=True, timeout=60
    )


def try_commit(
    repo: Path, env: dict[str, str], files: dict[str, str], *flags: str
) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    return run_git(repo, env, "commit", "-q", "-m", "change", *flags)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def install(cwd: Path, env: dict[str, str], *flags: str) -> str:
    proc = lockd(cwd, env, "hooks", "install", *flags)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def claim(
    broker: Broker, repo: Path, name: str, patterns: list[str], mode: str = "exclusive"
) -> Client:
    """Another peer, registered in this repo, holding `patterns`."""
    repo_id = identify(str(repo)).repo_id
    peer = broker.register(cwd=str(repo), repo_id=repo_id, name=name)
    peer.call(Api.set_summary(SUMMARY))
    got = peer.call(Api.announce(repo_id, patterns, REASON, mode=mode))
    assert got["granted"], got
    return peer


@pytest.fixture
def alice(broker: Broker, repo: Path) -> Client:
    return claim(broker, repo, "alice", ["src/api/"])


# ---- install --------------------------------------------------------------------


def test_install_status_idempotent_uninstall(repo: Path, env: dict[str, str]) -> None:
    hooks = repo / ".git" / "hooks"
    out = install(repo, env)
    target = hooks / "pre-commit"
    assert f"installed {target}" in out
    assert MARKER in target.read_text() and target.stat().st_mode & stat.S_IXUSR
    assert not (hooks / "pre-push").exists()
    first = target.read_text()

    assert "mode: warn (the default; --mode block to change)" in out

    install(repo, env, "--pre-push", "--mode", "block")  # again, with more
    assert target.read_text() == first
    assert MARKER in (hooks / "pre-push").read_text()
    assert not list(hooks.glob("*.legacy"))  # our own hook is never "kept" as foreign
    assert git(repo, "config", "lockd.hookMode").strip() == "block"

    status = json.loads(lockd(repo, env, "hooks", "status", "--json").stdout)
    assert status["hooks_dir"] == str(hooks) and status["mode"] == "block"
    assert status["hooks"]["pre-commit"] == {"installed": True, "outdated": False, "legacy": False}
    assert status["hooks"]["pre-push"]["installed"] is True
    text = lockd(repo, env, "hooks", "status").stdout
    assert "pre-commit: installed" in text and "mode: block" in text
    # Without --mode the mode set stays, and install says so.
    assert "mode: block (kept from lockd.hookMode" in install(repo, env)
    assert git(repo, "config", "lockd.hookMode").strip() == "block"

    out = lockd(repo, env, "hooks", "uninstall").stdout
    assert "removed" in out and not target.exists() and not (hooks / "pre-push").exists()
    assert "removed lockd.hookMode" in out
    assert subprocess.run(["git", "config", "lockd.hookMode"], cwd=repo).returncode == 1
    assert "no lockd hooks" in lockd(repo, env, "hooks", "uninstall").stdout
    status = json.loads(lockd(repo, env, "hooks", "status", "--json").stdout)
    assert status["hooks"]["pre-commit"]["installed"] is False


def test_hooks_help_says_what_each_action_does(repo: Path, env: dict[str, str]) -> None:
    """Each action has its own help: install's names the legacy hook, the mode and its
    default; only install takes --mode."""
    env = {**env, "COLUMNS": "500"}  # argparse wraps at the terminal's width
    text = lockd(repo, env, "hooks", "install", "--help").stdout
    assert "usage: lockd hooks install" in text and ".legacy" in text
    assert "lockd.hookMode" in text and "Omitted: the mode already set stays" in text
    assert "lockd.hookMode" in lockd(repo, env, "hooks", "uninstall", "--help").stdout
    assert lockd(repo, env, "hooks", "status", "--mode", "block").returncode == 2


def test_install_refuses_an_unknown_mode(repo: Path, env: dict[str, str]) -> None:
    proc = lockd(repo, env, "hooks", "install", "--mode", "strict")
    assert proc.returncode != 0 and "strict" in proc.stderr
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()


@pytest.mark.parametrize("absolute", [False, True])
def test_install_honours_core_hooks_path(
    repo: Path, env: dict[str, str], alice: Client, tmp_path: Path, absolute: bool
) -> None:
    where = tmp_path / "shared-hooks" if absolute else repo / ".githooks"
    git(repo, "config", "core.hooksPath", str(where) if absolute else ".githooks")
    install(repo, env)
    assert MARKER in (where / "pre-commit").read_text()
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    proc = try_commit(repo, env, {"src/api/app.py": "changed\n"})
    assert proc.returncode == 0 and "claimed by alice" in proc.stderr  # git ran it


def test_install_from_a_linked_worktree_goes_where_git_runs_it(
    repo: Path, env: dict[str, str], alice: Client, tmp_path: Path
) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature")
    install(wt, env)
    assert MARKER in (repo / ".git" / "hooks" / "pre-commit").read_text()
    for checkout in (wt, repo):
        proc = try_commit(checkout, env, {"src/api/app.py": f"from {checkout.name}\n"})
        assert proc.returncode == 0, proc.stderr
        assert "src/api/app.py: claimed by alice" in proc.stderr, checkout


LEGACY = """#!/bin/sh
echo "legacy ran $*" >> "{log}"
echo "legacy hook says hi" >&2
exit {code}
"""


def test_existing_hook_is_kept_runs_and_is_restored(
    repo: Path, env: dict[str, str], alice: Client, tmp_path: Path
) -> None:
    log = tmp_path / "legacy.log"
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    original = LEGACY.format(log=log, code=0)
    (hooks / "pre-commit").write_text(original)
    (hooks / "pre-commit").chmod(0o755)

    out = install(repo, env)
    assert "kept your pre-commit as pre-commit.legacy" in out
    assert (hooks / "pre-commit.legacy").read_text() == original
    install(repo, env)  # idempotent: the kept hook is not overwritten by ours
    assert (hooks / "pre-commit.legacy").read_text() == original
    status = json.loads(lockd(repo, env, "hooks", "status", "--json").stdout)
    assert status["hooks"]["pre-commit"] == {"installed": True, "outdated": False, "legacy": True}

    proc = try_commit(repo, env, {"src/api/app.py": "one\n"})
    assert proc.returncode == 0, proc.stderr
    assert "legacy hook says hi" in proc.stderr and "claimed by alice" in proc.stderr
    assert log.read_text().count("legacy ran") == 1

    # The kept hook still has its say: when it fails, the commit fails.
    (hooks / "pre-commit.legacy").write_text(LEGACY.format(log=log, code=1))
    before = head(repo)
    proc = try_commit(repo, env, {"README.md": "two\n"})
    assert proc.returncode != 0 and head(repo) == before

    (hooks / "pre-commit.legacy").write_text(original)
    out = lockd(repo, env, "hooks", "uninstall").stdout
    assert "restored your pre-commit" in out
    assert (hooks / "pre-commit").read_text() == original
    assert os.access(hooks / "pre-commit", os.X_OK) and not (hooks / "pre-commit.legacy").exists()


def test_install_refuses_when_both_a_hook_and_a_legacy_exist(
    repo: Path, env: dict[str, str]
) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    (hooks / "pre-commit.legacy").write_text("#!/bin/sh\nexit 0\n")
    proc = lockd(repo, env, "hooks", "install")
    assert proc.returncode != 0 and "move one away" in proc.stderr
    assert (hooks / "pre-commit").read_text() == "#!/bin/sh\nexit 0\n"  # nothing destroyed


# ---- pre-commit through the installed hook ------------------------------------


def test_warn_mode_prints_each_clash_and_commits(
    repo: Path, env: dict[str, str], alice: Client
) -> None:
    install(repo, env)
    proc = try_commit(repo, env, {"src/api/app.py": "changed\n", "src/db.py": "mine\n"})
    assert proc.returncode == 0, proc.stderr
    assert git(repo, "log", "-1", "--format=%s").strip() == "change"
    lines = [ln for ln in proc.stderr.splitlines() if "claimed by" in ln]
    assert len(lines) == 1, proc.stderr  # src/db.py is nobody's
    line = lines[0]
    for part in ("src/api/app.py", "src/api/", "alice", SUMMARY, REASON, "exclusive"):
        assert part in line, (part, line)
    assert re.search(r"\d+[smhd] ago", line), line


def _inbox_soon(peer: Client, timeout: float = 3.0) -> list[dict[str, Any]]:
    wait_for(lambda: peer.call(Api.inbox(mark_read=False))["messages"], timeout)
    return peer.call(Api.inbox(mark_read=False))["messages"]


def test_the_holder_is_told_someone_committed_into_its_claim(
    repo: Path, env: dict[str, str], alice: Client
) -> None:
    install(repo, env)
    assert try_commit(repo, env, {"src/api/app.py": "changed\n"}).returncode == 0
    inbox = _inbox_soon(alice)  # the broker tells holders just after it answers the hook
    assert len(inbox) == 1, inbox
    text = inbox[0]["text"]
    assert "pre-commit" in text and "src/api/app.py" in text and "src/api/" in text


@pytest.mark.parametrize("how", ["git-config", "env"])
def test_block_mode_refuses_and_says_how_to_bypass(
    repo: Path, env: dict[str, str], alice: Client, how: str
) -> None:
    if how == "git-config":
        install(repo, env, "--mode", "block")
    else:
        install(repo, env)
        env = {**env, "LOCKD_HOOK_MODE": "block"}
    before = head(repo)
    proc = try_commit(repo, env, {"src/api/app.py": "changed\n"})
    assert proc.returncode != 0
    assert "claimed by alice" in proc.stderr and "--no-verify" in proc.stderr
    assert head(repo) == before
    assert run_git(repo, env, "commit", "-q", "-m", "anyway", "--no-verify").returncode == 0
    assert head(repo) != before


def test_env_mode_beats_git_config(repo: Path, env: dict[str, str], alice: Client) -> None:
    install(repo, env, "--mode", "block")
    proc = try_commit(repo, {**env, "LOCKD_HOOK_MODE": "warn"}, {"src/api/app.py": "x\n"})
    assert proc.returncode == 0 and "claimed by alice" in proc.stderr


def test_block_mode_lets_a_shared_claim_through(
    broker: Broker, repo: Path, env: dict[str, str]
) -> None:
    """Shared means "tell me", not "keep out": warned, never blocked."""
    claim(broker, repo, "reader", ["docs/"], mode="shared")
    install(repo, env, "--mode", "block")
    proc = try_commit(repo, env, {"docs/guide.md": "edited\n"})
    assert proc.returncode == 0, proc.stderr
    assert "claimed by reader" in proc.stderr and "shared" in proc.stderr


@pytest.mark.parametrize("ref", ["name", "peer_id"])
def test_own_claims_are_a_reminder_not_a_clash(
    broker: Broker, repo: Path, env: dict[str, str], alice: Client, ref: str
) -> None:
    install(repo, env, "--mode", "block")
    me = alice.peer["name"] if ref == "name" else alice.peer["peer_id"]  # type: ignore[attr-defined]
    proc = try_commit(repo, {**env, "LOCKD_PEER": me}, {"src/api/app.py": "mine\n"})
    assert proc.returncode == 0, proc.stderr
    assert "claimed by" not in proc.stderr
    assert "reminder" in proc.stderr and "src/api/app.py" in proc.stderr
    assert "release" in proc.stderr
    # Holders are told just after the hook's answer, so a sentinel: bob's commit of the
    # same file, after hers. Once alice hears of bob's, she would have heard of her own.
    bob = broker.register(cwd=str(repo), repo_id=identify(str(repo)).repo_id, name="bob")
    bobs = bob.peer  # type: ignore[attr-defined]
    try_commit(repo, {**env, "LOCKD_PEER": bobs["peer_id"]}, {"src/api/app.py": "bob's\n"})
    told: list[dict[str, Any]] = []

    def heard_of_bobs() -> bool:
        told.extend(alice.call(Api.inbox())["messages"])
        return any(bobs["name"] in m["text"] for m in told)

    wait_for(heard_of_bobs)
    assert len(told) == 1, told  # bob's commit alone: nobody to tell of her own


@pytest.fixture
def session_file(broker: Broker) -> Iterator[Path]:
    """Where an agent's `lockd-mcp` leaves its session for hooks; removed after
    the test, since the broker (and its home) serve the whole module."""
    folder = broker.home / "sessions"
    folder.mkdir(exist_ok=True)
    path = folder / "test-session.json"
    yield path
    path.unlink(missing_ok=True)


def _write_session(path: Path, peer: Client, start: float | None) -> None:
    """The agent process is this test process: an ancestor of every git and
    hook it starts."""
    info: dict[str, Any] = peer.peer  # type: ignore[attr-defined]
    path.write_text(
        json.dumps(
            {
                "credential": peer.credential,
                "peer_id": info["peer_id"],
                "name": info["name"],
                "agent_pid": os.getpid(),
                "agent_start": start,
                "pid": os.getpid(),
                "cwd": info["cwd"],
                "repo_id": info["repo"],
            }
        )
    )


def test_committer_is_found_by_walking_up_to_its_agent(
    session_file: Path, repo: Path, env: dict[str, str], alice: Client
) -> None:
    install(repo, env, "--mode", "block")
    _write_session(session_file, alice, process_start_time(os.getpid()))
    proc = try_commit(repo, env, {"src/api/app.py": "agent's own\n"})
    assert proc.returncode == 0, proc.stderr
    assert "reminder" in proc.stderr and "claimed by" not in proc.stderr


def test_a_reused_pid_does_not_pass_for_the_agent(
    session_file: Path, repo: Path, env: dict[str, str], alice: Client
) -> None:
    install(repo, env, "--mode", "block")
    start = process_start_time(os.getpid())
    assert start is not None
    _write_session(session_file, alice, start - 1000)  # same pid, another process
    proc = try_commit(repo, env, {"src/api/app.py": "someone else\n"})
    assert proc.returncode != 0 and "claimed by alice" in proc.stderr


def test_renames_and_unicode_names_are_caught(
    broker: Broker, repo: Path, env: dict[str, str]
) -> None:
    commit_files = {"old/legacy.py": "".join(f"{i}\n" for i in range(30)), "café/ünï.md": "u\n"}
    for name, text in commit_files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "seed")
    claim(broker, repo, "bob", ["old/legacy.py", "café/*.md", "/日本/"])
    install(repo, env)

    (repo / "new").mkdir()
    git(repo, "mv", "old/legacy.py", "new/modern.py")  # the claimed side is the old one
    proc = run_git(repo, env, "commit", "-q", "-m", "move")
    assert proc.returncode == 0, proc.stderr
    assert "old/legacy.py: claimed by bob" in proc.stderr

    proc = try_commit(repo, env, {"café/ünï.md": "edit\n", "日本/ファイル 1.txt": "new\n"})
    assert proc.returncode == 0, proc.stderr
    assert "café/ünï.md: claimed by bob" in proc.stderr
    assert "日本/ファイル 1.txt: claimed by bob" in proc.stderr


def test_deleting_a_claimed_file_is_a_clash(repo: Path, env: dict[str, str], alice: Client) -> None:
    install(repo, env, "--mode", "block")
    git(repo, "rm", "-q", "src/api/app.py")
    proc = run_git(repo, env, "commit", "-q", "-m", "drop")
    assert proc.returncode != 0 and "src/api/app.py: claimed by alice" in proc.stderr


def test_nothing_claimed_means_silence(repo: Path, env: dict[str, str], alice: Client) -> None:
    install(repo, env, "--mode", "block")
    proc = try_commit(repo, env, {"src/db.py": "free\n", "README.md": "free\n"})
    assert proc.returncode == 0 and proc.stderr == ""


def test_claims_in_another_repo_do_not_count(
    broker: Broker, repo: Path, env: dict[str, str], tmp_path: Path
) -> None:
    other = make_repo(tmp_path / "other", {"src/api/app.py": "o\n"})
    claim(broker, other, "carol", ["src/"])
    install(repo, env, "--mode", "block")
    proc = try_commit(repo, env, {"src/api/app.py": "changed\n"})
    assert proc.returncode == 0 and "carol" not in proc.stderr


# ---- broker down ------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung broker."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


@pytest.mark.parametrize("kind", ["stopped", "hung"])
def test_broker_down_never_blocks_and_is_quick(
    repo: Path, env: dict[str, str], alice: Client, silent_port: int, kind: str
) -> None:
    """Nothing listening, or a listener that never answers: one line, exit 0."""
    install(repo, env, "--mode", "block")
    env = {**env, "LOCKD_PORT": str(free_port() if kind == "stopped" else silent_port)}
    t0 = time.monotonic()
    proc = try_commit(repo, env, {"src/api/app.py": "while down\n"})
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not reachable" in lines[0] and "not checked" in lines[0], lines
    assert took < (2.0 if kind == "stopped" else 5.0), took


# ---- pre-push -----------------------------------------------------------------------


@pytest.fixture
def cloned(broker: Broker, tmp_path: Path) -> tuple[Path, Client]:
    """A clone of a bare origin, and alice's claim in that repo."""
    seed = make_repo(tmp_path / "seed", {"src/api/app.py": "a\n", "README.md": "r\n"})
    origin = bare_origin(tmp_path / "origin.git", seed)
    work = clone(origin, tmp_path / "work")
    return work, claim(broker, work, "alice", ["src/api/"])


@pytest.fixture
def pushing(cloned: tuple[Path, Client], env: dict[str, str]) -> tuple[Path, Client]:
    """The clone with both of lockd's hooks installed."""
    install(cloned[0], env, "--pre-push")
    return cloned


def _commit_quietly(repo: Path, env: dict[str, str], files: dict[str, str]) -> None:
    proc = try_commit(repo, env, files, "--no-verify")  # only pre-push is under test
    assert proc.returncode == 0, proc.stderr


def test_pre_push_of_a_new_branch(pushing: tuple[Path, Client], env: dict[str, str]) -> None:
    work, holder = pushing
    git(work, "switch", "-q", "-c", "topic")
    _commit_quietly(work, env, {"src/api/app.py": "pushed\n"})
    _commit_quietly(work, env, {"README.md": "also\n"})
    proc = run_git(work, env, "push", "-q", "origin", "topic")
    assert proc.returncode == 0, proc.stderr
    assert "this push carries" in proc.stderr
    assert "src/api/app.py: claimed by alice" in proc.stderr and "README.md:" not in proc.stderr
    assert git(work, "ls-remote", "origin", "topic").strip()
    told = _inbox_soon(holder)
    assert told and "pre-push" in told[-1]["text"]

    # An update of a branch the remote has: only the new commits count.
    _commit_quietly(work, env, {"README.md": "again\n"})
    proc = run_git(work, env, "push", "-q", "origin", "topic")
    assert proc.returncode == 0 and "claimed by" not in proc.stderr


def test_pre_push_block_mode_and_deletion(
    pushing: tuple[Path, Client], env: dict[str, str]
) -> None:
    work, _ = pushing
    git(work, "config", "lockd.hookMode", "block")
    git(work, "switch", "-q", "-c", "topic")
    _commit_quietly(work, env, {"src/api/app.py": "pushed\n"})
    proc = run_git(work, env, "push", "-q", "origin", "topic")
    assert proc.returncode != 0 and "--no-verify" in proc.stderr
    assert not git(work, "ls-remote", "origin", "topic").strip()
    assert run_git(work, env, "push", "-q", "--no-verify", "origin", "topic").returncode == 0

    # Deleting the remote branch touches no files: never refused.
    proc = run_git(work, env, "push", "-q", "origin", "--delete", "topic")
    assert proc.returncode == 0, proc.stderr
    assert "claimed by" not in proc.stderr
    assert not git(work, "ls-remote", "origin", "topic").strip()


def test_pre_push_to_a_url_checks_only_unpushed_commits(
    pushing: tuple[Path, Client], env: dict[str, str], tmp_path: Path
) -> None:
    """Pushed by URL, not remote name: commits the remotes already have are not news."""
    work, _ = pushing
    git(work, "switch", "-q", "-c", "topic")
    _commit_quietly(work, env, {"README.md": "unclaimed\n"})
    proc = run_git(work, env, "push", "-q", str(tmp_path / "origin.git"), "topic")
    assert proc.returncode == 0, proc.stderr
    assert "claimed by" not in proc.stderr  # src/api/app.py came with the initial commit


def test_the_shipped_hook_scripts_work_when_copied_by_hand(
    pushing: tuple[Path, Client], env: dict[str, str]
) -> None:
    """hooks/pre-commit and hooks/pre-push, copied into .git/hooks with
    `lockd` on PATH, as a user without `lockd hooks install` would."""
    work, _ = pushing
    hooks = work / ".git" / "hooks"
    for name in ("pre-commit", "pre-push"):
        shutil.copy2(ROOT / "hooks" / name, hooks / name)
        assert os.access(hooks / name, os.X_OK), f"hooks/{name} is not executable"
    env = {**env, "PATH": f"{Path(PY).parent}{os.pathsep}{env.get('PATH', '')}"}
    git(work, "switch", "-q", "-c", "by-hand")
    proc = try_commit(work, env, {"src/api/app.py": "by hand\n"})
    assert proc.returncode == 0 and "src/api/app.py: claimed by alice" in proc.stderr
    proc = run_git(work, env, "push", "-q", "origin", "by-hand")
    assert proc.returncode == 0 and "this push carries" in proc.stderr


# ---- the pre-commit framework ------------------------------------------------------


def _hook_repo(cache: Path) -> tuple[Path, str]:
    """This working tree's package and `.pre-commit-hooks.yaml` as a git repo,
    committed with fixed dates so that unchanged code gives the same rev (and
    pre-commit reuses the environment it built for it)."""
    src = cache / "hook-repo"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    listed = subprocess.run(
        [
            "git",
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            "pyproject.toml",
            "README.md",
            "LICENSE",
            ".pre-commit-hooks.yaml",
            "lockd",
            "mcp_tools",
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    git(src, "init", "-q")
    git(src, "add", "-A")
    fixed = "2020-01-01T00:00:00Z"
    subprocess.run(
        ["git", "commit", "-q", "-m", "lockd for pre-commit"],
        cwd=src,
        env={**os.environ, "GIT_AUTHOR_DATE": fixed, "GIT_COMMITTER_DATE": fixed},
        check=True,
    )
    return src, head(src)


def test_pre_commit_framework_runs_lockd_from_its_hooks_yaml(
    cloned: tuple[Path, Client], env: dict[str, str]
) -> None:
    framework = shutil.which("pre-commit", path=str(Path(PY).parent))
    if framework is None:
        pytest.skip("the pre-commit package is not installed (pip install -e .[test])")
    repo, _ = cloned
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lockd-tests"
    hook_repo, rev = _hook_repo(cache)
    home, seen = cache / "pre-commit", cache / "pre-commit.rev"
    if seen.exists() and seen.read_text() != rev:
        shutil.rmtree(home, ignore_errors=True)  # keep one environment, not one per change
    seen.write_text(rev)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hook_repo}\n  rev: {rev}\n  hooks:\n"
        "  - id: lockd\n  - id: lockd-pre-push\n"
    )
    git(repo, "add", ".pre-commit-config.yaml")
    git(repo, "commit", "-q", "-m", "pre-commit config")
    fenv = {**env, "PRE_COMMIT_HOME": str(home)}
    proc = subprocess.run(
        [framework, "install-hooks"], cwd=repo, env=fenv, text=True, capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"pre-commit could not build lockd's environment (offline?): {proc.stdout}")
    proc = subprocess.run(
        [framework, "install", "-t", "pre-commit", "-t", "pre-push"],
        cwd=repo,
        env=fenv,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr

    git(repo, "switch", "-q", "-c", "topic")
    proc = try_commit(repo, fenv, {"src/api/app.py": "through pre-commit\n"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "src/api/app.py: claimed by alice" in out  # shown although the hook passed

    before = head(repo)
    proc = try_commit(repo, {**fenv, "LOCKD_HOOK_MODE": "block"}, {"src/api/app.py": "again\n"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "--no-verify" in out and head(repo) == before

    # pre-push through the framework: it passes the refs by environment, not stdin.
    proc = run_git(repo, fenv, "push", "-q", "origin", "topic")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "this push carries" in out and "src/api/app.py: claimed by alice" in out


# ---- speed: nothing heavy on the hook's path --------------------------------------

HEAVY = ("fastapi", "pydantic", "git", "uvicorn", "starlette", "httpx", "mcp", "anyio")


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["hook-run", "pre-commit"], ""),
        (["hook-run", "pre-push", "origin"], ""),
        (
            ["guard", "--hook"],
            '{"hook_event_name": "PreToolUse", "tool_name": "Edit", '
            '"tool_input": {"file_path": "src/api/app.py"}}',
        ),
    ],
)
def test_hook_paths_import_nothing_heavy(
    repo: Path, env: dict[str, str], alice: Client, args: list[str], stdin: str
) -> None:
    (repo / "src/api/app.py").write_text("staged\n")
    git(repo, "add", "-A")
    proc = subprocess.run(
        [PY, "-X", "importtime", "-m", "lockd", *args],
        cwd=repo,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        input=stdin,
        text=True,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    if args[0] == "hook-run" and args[1] == "pre-commit":
        assert "claimed by alice" in proc.stderr  # the check really ran
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert imported, proc.stderr[:500]
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_installed_hook_quotes_every_value_and_names_its_template() -> None:
    """A Python path with a quote and a space still runs; the hook carries
    its template's fingerprint, and a first-release hook is ours but outdated."""
    from lockd.githooks import install as githooks

    text = githooks.hook_script("pre-commit", "/opt/it's here/bin/python")
    assert "INSTALL_PYTHON='/opt/it'\"'\"'s here/bin/python'" in text
    probe = text.split("INSTALL_PYTHON=")[1].split("\n")[0]
    shown = subprocess.run(["sh", "-c", f"x={probe}; printf %s \"$x\""], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert shown == "/opt/it's here/bin/python"
    assert githooks._installed_template(text) == githooks.template_id()
    old = "#!/bin/sh\n# lockd-managed-hook\n# Installed by `lockd hooks install`\n"
    assert githooks._installed_template(old) == "unversioned"
    assert githooks._installed_template("#!/bin/sh\necho mine\n") is None


def test_an_outdated_hook_is_reported_and_replaced(tmp_path: Path) -> None:
    from lockd.githooks import install as githooks

    repo = make_repo(tmp_path / "r", {"a": "a\n"})
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text("#!/bin/sh\n# lockd-managed-hook\nexec lockd hook-run pre-commit\n")
    hook.chmod(0o755)
    assert githooks.status(str(repo))["hooks"]["pre-commit"]["outdated"] is True
    githooks.install(str(repo))
    assert not (hook.parent / "pre-commit.legacy").exists()  # ours: replaced, not chained
    st = githooks.status(str(repo))["hooks"]["pre-commit"]
    assert st == {"installed": True, "outdated": False, "legacy": False}


# ---- a person's own claims, commit notices, LOCKD_PEER (issue 17) -------------


def _person_inbox(repo: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    proc = lockd(repo, env, "inbox", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["messages"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["warn", "block"])
def test_a_persons_own_claims_never_block_the_person(
    broker: Broker, repo: Path, env: dict[str, str], mode: str
) -> None:
    """`lockd claim src/` and then the same person's commit of src/db.py (no agent among
    its ancestors): a reminder, never a clash, and the person is not told of it."""
    install(repo, env, "--mode", mode)
    claimed = lockd(repo, env, "claim", "src/", "--reason", "my refactor")
    assert claimed.returncode == 0, claimed.stderr
    _person_inbox(repo, env)  # read whatever came before
    proc = try_commit(repo, env, {"src/db.py": "mine\n"})
    assert proc.returncode == 0, proc.stderr
    assert "claimed by" not in proc.stderr and "other peers" not in proc.stderr, proc.stderr
    assert "reminder" in proc.stderr and "src/db.py" in proc.stderr
    # A sentinel: bob's commit into the same claim is told to the person, and only it.
    bob = broker.register(cwd=str(repo), repo_id=identify(str(repo)).repo_id, name="bob-17")
    try_commit(repo, {**env, "LOCKD_PEER": "bob-17"}, {"src/db.py": "bob's\n"})
    told: list[dict[str, Any]] = []

    def heard_of_bobs() -> bool:
        told.extend(_person_inbox(repo, env))
        return any("bob-17" in m["text"] for m in told)

    wait_for(heard_of_bobs)
    verdict = "commit_blocked" if mode == "block" else "commit_touched"
    assert [m["meta"]["event"] for m in told] == [verdict], told
    bob.call(Api.goodbye())


def test_commit_notices_name_each_holders_own_files_and_the_verdict(
    broker: Broker, repo: Path, env: dict[str, str], alice: Client
) -> None:
    """alice holds /src/api/, bob README.md: each is told of its own files only, and a
    commit the hook refused reads (and is recorded) otherwise than one that went through."""
    bob = claim(broker, repo, "bob-readme", ["/README.md"])
    install(repo, env)
    files = {"src/api/app.py": "1\n", "README.md": "1\n", "docs/guide.md": "1\n"}
    assert try_commit(repo, env, files).returncode == 0
    (to_alice,) = _inbox_soon(alice)
    (to_bob,) = _inbox_soon(bob)
    assert "src/api/app.py" in to_alice["text"] and "README.md" not in to_alice["text"]
    assert "README.md" in to_bob["text"] and "src/api/app.py" not in to_bob["text"]
    assert "went through" in to_alice["text"] and to_alice["meta"]["event"] == "commit_touched"
    alice.call(Api.inbox())

    git(repo, "config", "lockd.hookMode", "block")
    proc = try_commit(repo, env, {"src/api/app.py": "2\n"})
    assert proc.returncode != 0
    (refused,) = _inbox_soon(alice)
    assert "refused" in refused["text"] and refused["meta"]["event"] == "commit_blocked"
    kinds = [e["event"] for e in alice.call(Api.events(identify(str(repo)).repo_id))["events"]]
    assert "commit_blocked" in kinds and "commit_touched" in kinds, kinds


def test_an_unknown_lockd_peer_is_an_error_not_ignored(
    repo: Path, env: dict[str, str], alice: Client
) -> None:
    """LOCKD_PEER names who commits; one the broker does not know stops the commit and says
    so, instead of checking as nobody."""
    install(repo, env)
    before = head(repo)
    proc = try_commit(repo, {**env, "LOCKD_PEER": "nobody-at-all"}, {"src/db.py": "x\n"})
    assert proc.returncode != 0, proc.stderr
    assert "LOCKD_PEER='nobody-at-all'" in proc.stderr and "lockd peers" in proc.stderr
    assert head(repo) == before
