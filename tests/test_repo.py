"""Repo identity and staged paths against real git: the hooks and the broker
agree on "which repo" and "which files" only if these hold for every kind of
checkout and every kind of file name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.local import git as gitcmd
from lockd.local.repo import identify, normalize_remote_url, relpath_in_repo, repo_id_for
from lockd.testing import Broker
from tests.gitutil import add_worktree, bare_origin, clone, commit, git, make_repo, run_git

# ---- one repo, whichever checkout ---------------------------------------------


def test_root_worktree_and_second_clone_are_one_repo(tmp_path: Path) -> None:
    """Worktrees share a common dir, clones share origin: all one repo id."""
    seed = make_repo(tmp_path / "seed", {"src/a.py": "a\n"})
    origin = bare_origin(tmp_path / "origin.git", seed)
    first = clone(origin, tmp_path / "first")
    second = clone(origin, tmp_path / "second")
    wt = add_worktree(first, tmp_path / "wt", "feature")

    ids = {identify(str(p)).repo_id for p in (first, second, wt, first / "src")}
    assert len(ids) == 1
    (repo_id,) = ids
    assert repo_id == "git:file:" + os.path.realpath(tmp_path / "origin")
    # Each checkout keeps its own root: paths are relative to the checkout.
    assert identify(str(wt)).root == os.path.realpath(wt)
    assert identify(str(first / "src")).root == os.path.realpath(first)
    assert identify(str(second)).origin == identify(str(first)).origin
    # A repo that is no clone of that origin is another repo.
    assert identify(str(seed)).repo_id != repo_id


def test_worktrees_without_origin_share_the_common_dir(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "solo")
    wt = add_worktree(repo, tmp_path / "solo-wt", "topic")
    main_info, wt_info = identify(str(repo)), identify(str(wt))
    assert main_info.origin is None
    assert main_info.repo_id == wt_info.repo_id == "gitdir:" + os.path.realpath(repo / ".git")
    assert main_info.root != wt_info.root
    assert wt_info.common_dir == main_info.common_dir


def test_ssh_and_https_clones_of_one_remote_are_one_repo(tmp_path: Path) -> None:
    """Only config is read: no network needed to tell two forms of a URL apart."""
    a = make_repo(tmp_path / "a", origin="git@github.com:Org/Repo.git")
    b = make_repo(tmp_path / "b", origin="https://github.com/Org/Repo")
    assert identify(str(a)).repo_id == identify(str(b)).repo_id == "git:github.com/Org/Repo"


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:Org/Repo.git",
        "github.com:Org/Repo",
        "ssh://git@github.com/Org/Repo.git",
        "ssh://git@github.com:22/Org/Repo",
        "git+ssh://git@GitHub.com/Org/Repo.git/",
        "https://github.com/Org/Repo.git",
        "https://user:secret@github.com/Org/Repo.git/",
        "https://github.com:443/Org/Repo",
        "http://github.com/Org/Repo",
        "git://github.com/Org/Repo.git",
    ],
)
def test_remote_url_forms_normalize_equal(url: str) -> None:
    assert normalize_remote_url(url) == "github.com/Org/Repo"


def test_remote_urls_that_differ_stay_apart(tmp_path: Path) -> None:
    """Case in the path and a non-default port are part of the identity."""
    assert normalize_remote_url("https://github.com/org/repo") != "github.com/Org/Repo"
    assert normalize_remote_url("ssh://git@host:2222/x/y.git") == "host:2222/x/y"
    assert normalize_remote_url("https://gitlab.com/Org/Repo") != normalize_remote_url(
        "https://github.com/Org/Repo"
    )
    local = tmp_path / "proj.git"
    local.mkdir()
    want = "file:" + os.path.realpath(tmp_path / "proj")
    assert normalize_remote_url(str(local)) == want
    assert normalize_remote_url(local.as_uri()) == want
    assert normalize_remote_url("proj.git", base=str(tmp_path)) == want
    with pytest.raises(LockdError):
        normalize_remote_url("  ")


def test_outside_git_the_directory_is_the_repo(tmp_path: Path) -> None:
    plain = tmp_path / "plain" / "sub"
    plain.mkdir(parents=True)
    info = identify(str(plain))
    assert not info.is_git and info.common_dir is None and info.origin is None
    assert info.repo_id == "dir:" + os.path.realpath(plain) == repo_id_for(None, None, info.root)


def test_ignorecase_is_read_from_the_repo(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    assert identify(str(repo)).ignorecase is False
    git(repo, "config", "core.ignorecase", "true")
    assert identify(str(repo)).ignorecase is True


def test_relpath_in_repo(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"src/app.py": "x\n"})
    link = tmp_path / "link"
    link.symlink_to(repo)
    info = identify(str(repo))
    assert relpath_in_repo(info, str(repo / "src" / "app.py")) == "src/app.py"
    assert relpath_in_repo(info, "app.py", cwd=str(repo / "src")) == "src/app.py"
    assert relpath_in_repo(info, "../README.md", cwd=str(repo / "src")) == "README.md"
    assert relpath_in_repo(info, str(link / "src" / "new.py")) == "src/new.py"  # via symlink
    assert relpath_in_repo(info, str(repo / "a b" / "ü.txt")) == "a b/ü.txt"
    for bad, needle in (
        (str(tmp_path / "elsewhere.py"), "outside"),
        (str(repo), "checkout itself"),
        ("  ", "empty"),
        ("../../x", "outside"),
    ):
        with pytest.raises(LockdError, match=needle):
            relpath_in_repo(info, bad, cwd=str(repo / "src"))


def test_relpath_from_a_worktree_is_relative_to_that_worktree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"src/app.py": "x\n"})
    wt = add_worktree(repo, tmp_path / "wt", "f")
    info = identify(str(wt))
    assert relpath_in_repo(info, str(wt / "src" / "app.py")) == "src/app.py"
    with pytest.raises(LockdError, match="outside"):
        relpath_in_repo(info, str(repo / "src" / "app.py"))


# ---- staged paths ---------------------------------------------------------------

ODD_NAMES = [
    "with space.txt",
    'quo"te.txt',
    "it's.txt",
    "naïve café.md",
    "日本語/ファイル.py",
    "tab\there.txt",
    "new\nline.txt",
    "back\\slash.txt",
]


def _write(repo: Path, name: str, text: str) -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_staged_paths_added_modified_deleted(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"keep.txt": "k\n", "mod.txt": "m\n", "gone.txt": "g\n"})
    _write(repo, "mod.txt", "changed\n")
    _write(repo, "added/new.txt", "n\n")
    _write(repo, "unstaged.txt", "u\n")  # not staged: not part of the commit
    git(repo, "rm", "-q", "gone.txt")
    git(repo, "add", "mod.txt", "added/new.txt")
    assert sorted(gitcmd.staged_paths(str(repo))) == ["added/new.txt", "gone.txt", "mod.txt"]


def test_staged_paths_renames_give_both_sides(tmp_path: Path) -> None:
    body = "".join(f"line {i}\n" for i in range(40))
    repo = make_repo(tmp_path / "r", {"old/module.py": body, "other.txt": "o\n"})
    (repo / "new" / "módulo dir").mkdir(parents=True)
    git(repo, "mv", "old/module.py", "new/módulo dir/module.py")
    staged = gitcmd.staged_paths(str(repo))
    assert sorted(staged) == ["new/módulo dir/module.py", "old/module.py"]
    raw = git(repo, "diff", "--cached", "--name-status", "-M")
    assert raw.startswith("R"), raw  # git itself saw a rename, not add + delete


def test_staged_paths_copies(tmp_path: Path) -> None:
    """A copy whose source also changes is reported by git as C: both sides."""
    body = "".join(f"line {i}\n" for i in range(40))
    repo = make_repo(tmp_path / "r", {"src.py": body})
    _write(repo, "copy of src.py", body)
    _write(repo, "src.py", body + "more\n")
    git(repo, "add", "-A")
    raw = git(repo, "diff", "--cached", "--name-status", "-C", "HEAD")
    assert any(line.startswith("C") for line in raw.splitlines()), raw
    assert sorted(gitcmd.staged_paths(str(repo))) == ["copy of src.py", "src.py"]


def test_staged_paths_odd_names_survive(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"rename me.txt": "".join(f"{i}\n" for i in range(30))})
    for name in ODD_NAMES:
        _write(repo, name, f"{name}\n")
    git(repo, "mv", "rename me.txt", "renamed «ä».txt")
    git(repo, "add", "-A")
    staged = gitcmd.staged_paths(str(repo))
    assert sorted(staged) == sorted([*ODD_NAMES, "rename me.txt", "renamed «ä».txt"])
    # The same names come back from a commit's diff (what pre-push reads).
    git(repo, "commit", "-q", "-m", "odd")
    changed = gitcmd.changed_paths_between(str(repo), "HEAD~1", "HEAD")
    assert sorted(changed) == sorted(staged)


def test_staged_paths_before_the_first_commit(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    _write(repo, "a.txt", "a\n")
    _write(repo, "dir/ü.txt", "b\n")
    git(repo, "add", "-A")
    assert sorted(gitcmd.staged_paths(str(repo))) == ["a.txt", "dir/ü.txt"]


def test_staged_paths_are_repo_relative_from_a_subdirectory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"src/deep/x.py": "x\n"})
    _write(repo, "src/deep/x.py", "y\n")
    git(repo, "add", "-A")
    assert gitcmd.staged_paths(str(repo / "src" / "deep")) == ["src/deep/x.py"]


def test_paths_of_new_commits_stop_at_the_remote(tmp_path: Path) -> None:
    seed = make_repo(tmp_path / "seed", {"base.txt": "b\n"})
    origin = bare_origin(tmp_path / "origin.git", seed)
    work = clone(origin, tmp_path / "work")
    git(work, "switch", "-q", "-c", "topic")
    _write(work, "one.txt", "1\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "one")
    _write(work, "two words.txt", "2\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "two")
    tip = git(work, "rev-parse", "HEAD").strip()
    got = gitcmd.paths_of_new_commits(str(work), tip, "origin")
    assert sorted(got) == ["one.txt", "two words.txt"]


def test_not_a_repo_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LockdError, match="failed|not inside"):
        gitcmd.rev_parse_info(str(tmp_path))
    assert gitcmd.toplevel(str(tmp_path)) is None


def test_roots_agree_with_gitpython(tmp_path: Path) -> None:
    """GitPython as an independent oracle for the roots `identify` reads with
    one `git rev-parse` (GitPython itself stays off the hook's path: importing
    it costs more than the hook's whole budget)."""
    import git as gitpython

    main = make_repo(tmp_path / "main")
    wt = add_worktree(main, tmp_path / "wt", "side")
    (main / "pkg" / "sub").mkdir(parents=True)
    for where in (main, wt, main / "pkg" / "sub"):
        oracle = gitpython.Repo(where, search_parent_directories=True)
        info = identify(str(where))
        assert info.root == os.path.realpath(oracle.working_tree_dir)
        assert info.common_dir == os.path.realpath(oracle.common_dir)
        assert info.repo_id == f"gitdir:{os.path.realpath(oracle.common_dir)}"


# ---- a repo's identity under live sessions (issue 17), with a real broker --------------
def _lockd(cwd: Path, env: dict[str, str], *args: str, code: int = 0) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "lockd", *args], cwd=cwd, env=env, text=True,
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return proc.stdout


def _locks(cwd: Path, env: dict[str, str]) -> list[str]:
    return [lk["pattern"] for lk in json.loads(_lockd(cwd, env, "locks", "--json"))["locks"]]


def _agent(broker: Broker, where: Path, name: str) -> Client:
    """An agent session registered as lockd-mcp registers one: with every key of its repo."""
    info = identify(str(where))
    return broker.register(
        name=name, cwd=info.root, repo_id=info.repo_id, repo_root=info.root,
        repo_keys=list(info.keys),
    )  # fmt: skip


def test_adding_a_remote_under_a_live_session_keeps_its_repo(
    broker: Broker, tmp_path: Path
) -> None:
    """`git remote add origin …` while an agent works: its claim still protects its files
    (the hook refuses another's commit in block mode) and it stays in `peers --scope repo`."""
    env = broker.env
    repo = make_repo(tmp_path / "proj", {"src/app.py": "a\n"})
    agent = _agent(broker, repo, "worker")
    repo_id = agent.peer["repo"]  # type: ignore[attr-defined]
    assert agent.call(Api.announce(repo_id, ["/src/"], "rewrite"))["granted"]
    _lockd(repo, env, "hooks", "install", "--mode", "block")
    other = broker.register(cwd=str(repo), repo_id=repo_id, name="other")

    git(repo, "remote", "add", "origin", "https://example.com/team/proj.git")
    assert identify(str(repo)).repo_id == "git:example.com/team/proj"  # what git says now
    peers = json.loads(_lockd(repo, env, "peers", "--scope", "repo", "--json"))["peers"]
    assert "worker" in {p["name"] for p in peers}
    assert _locks(repo, env) == ["/src/"]
    (repo / "src" / "app.py").write_text("other's\n")
    git(repo, "add", "-A")
    refused = run_git(repo, {**env, "LOCKD_PEER": "other"}, "commit", "-q", "-m", "x")
    assert refused.returncode != 0 and "claimed by worker" in refused.stderr, refused.stderr
    git(repo, "remote", "set-url", "origin", "git@example.com:team/renamed.git")
    assert _locks(repo, env) == ["/src/"]
    other.call(Api.goodbye())


def test_the_first_commit_keeps_the_repo_and_clones_meet_by_root_commit(
    broker: Broker, tmp_path: Path
) -> None:
    """A claim made before the first commit still holds after it; clones that share no
    remote (one cloned from the other, origins removed) meet through the root commit,
    also after the broker restarts."""
    env = broker.env
    first = tmp_path / "first"
    first.mkdir()
    git(first, "init", "-q")
    _lockd(first, env, "claim", "docs/", "--reason", "before any commit")
    commit(first, {"docs/a.md": "a\n"}, "first commit")
    assert _locks(first, env) == ["docs/"]  # the same repo, now with a root commit
    broker.restart()  # the aliases are kept: the clone below is met after a restart
    second = clone(first, tmp_path / "second")
    git(second, "remote", "remove", "origin")
    assert identify(str(second)).repo_id != identify(str(first)).repo_id
    assert _locks(second, env) == ["docs/"]
    unrelated = make_repo(tmp_path / "unrelated", {"docs/a.md": "a\n"})
    assert _locks(unrelated, env) == []
