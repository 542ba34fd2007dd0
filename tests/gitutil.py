"""Real git repositories for tests, isolated from the user's git config:
empty template dir, no system config, HOME in a temp dir, author set."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git_env(home: Path) -> dict[str, str]:
    (home / "git-template").mkdir(parents=True, exist_ok=True)
    return {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_TEMPLATE_DIR": str(home / "git-template"),
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }


def git(cwd: Path | str, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        text=True,
        input=input,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def run_git(
    cwd: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """git as a user runs it, its hooks included: they see this environment. The
    result, whatever the exit code (a hook may refuse on purpose)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout
    )


def make_repo(path: Path, files: dict[str, str] | None = None, origin: str | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    if origin:
        git(path, "remote", "add", "origin", origin)
    # The path in the message's body: two test repos with the same files, made in the same
    # second, would otherwise have the same root commit, and so be one repo to lockd.
    commit(path, files or {"README.md": "hello\n"}, f"initial\n\n{path}")
    return path


def commit(repo: Path, files: dict[str, str], message: str = "change") -> None:
    for name, text in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def add_worktree(repo: Path, path: Path, branch: str) -> Path:
    git(repo, "worktree", "add", "-q", "-b", branch, str(path))
    return path


def bare_origin(path: Path, seed: Path) -> Path:
    """A bare repo seeded from `seed`, usable as `origin` for clones."""
    git(seed.parent, "clone", "-q", "--bare", str(seed), str(path))
    return path


def clone(src: Path | str, dst: Path) -> Path:
    git(dst.parent, "clone", "-q", str(src), str(dst))
    return dst


def isolate(monkeypatch: object, home: Path) -> None:
    for key, value in git_env(home).items():
        monkeypatch.setenv(key, value)  # type: ignore[attr-defined]
    os.environ.pop("GIT_DIR", None)
