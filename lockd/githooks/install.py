"""Installing lockd's git hooks without destroying anyone's own: the hook
is a versioned template (lockd/resources/git-hook.sh); a hook already there
is kept and chained; uninstall restores it."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

from lockd.core.errors import LockdError, invalid
from lockd.githooks.check import HOOK_TYPES
from lockd.local import git
from lockd.local.repo import MODES, hook_mode

MARKER = "# lockd-managed-hook"


def hook_script(name: str, python: str) -> str:
    """The hook lockd installs, from its versioned template (lockd/resources/
    git-hook.sh), every interpolated value shell-quoted."""
    import shlex

    text = _template()
    for key, value in (("@HOOK@", name), ("@PYTHON@", python)):
        text = text.replace(key, shlex.quote(value))
    return text.replace("@MARKER@", f"{MARKER} template={template_id()}")


def _template() -> str:
    from importlib.resources import files

    return (files("lockd") / "resources" / "git-hook.sh").read_text()


def template_id() -> str:
    """The current template's fingerprint, written into every installed hook:
    a hook with another one (or none: the first release's) is ours but outdated."""
    import hashlib  # not on the hook's own path

    return hashlib.sha256(_template().encode()).hexdigest()[:16]


def _installed_template(text: str) -> str | None:
    """The template fingerprint of a lockd hook's text ("unversioned" for the
    first release's, which had none), None if the hook is not lockd's."""
    for line in text.splitlines()[:3]:
        if line == MARKER:
            return "unversioned"
        if line.startswith(MARKER + " template="):
            return line.split("=", 1)[1].strip()
    return None


def _hooks_path(cwd: str) -> Path:
    return Path(git.hooks_dir(cwd))


def _is_ours(path: Path) -> bool:
    return _template_of(path) is not None


def _template_of(path: Path) -> str | None:
    try:
        return _installed_template(path.read_text(errors="replace"))
    except OSError:
        return None


def install(cwd: str, mode: str | None = None, pre_push: bool = False) -> list[str]:
    hooks = _hooks_path(cwd)
    hooks.mkdir(parents=True, exist_ok=True)
    done = []
    for name in ("pre-commit", "pre-push") if pre_push else ("pre-commit",):
        target, legacy = hooks / name, hooks / f"{name}.legacy"
        if target.exists() and not _is_ours(target):
            if legacy.exists():
                raise LockdError(
                    "conflict",
                    f"both {target} and {legacy} exist and neither is "
                    "lockd's: move one away, then install again",
                )
            target.rename(legacy)
            done.append(f"kept your {name} as {legacy.name}; it still runs first")
        target.write_text(hook_script(name, sys.executable))
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        done.append(f"installed {target}")
    if mode:
        if mode not in MODES:
            raise invalid(f"mode {mode!r} is not one of: warn, block")
        git.run(["config", "lockd.hookMode", mode], cwd=cwd)
        done.append(f"lockd.hookMode = {mode}")
    else:  # no --mode: the mode already set stays, and the user is told which it is
        done.append(_mode_line(cwd))
    return done


def _mode_line(cwd: str) -> str:
    current = hook_mode(cwd)
    other = "block" if current == "warn" else "warn"
    if os.environ.get("LOCKD_HOOK_MODE"):
        source = "from LOCKD_HOOK_MODE"
    elif git.config_get(cwd, "lockd.hookMode"):
        source = "kept from lockd.hookMode"
    else:
        source = "the default"
    return f"mode: {current} ({source}; --mode {other} to change)"


def uninstall(cwd: str) -> list[str]:
    hooks = _hooks_path(cwd)
    done = []
    for name in HOOK_TYPES:
        target, legacy = hooks / name, hooks / f"{name}.legacy"
        if target.exists() and _is_ours(target):
            target.unlink()
            done.append(f"removed {target}")
            if legacy.exists():
                legacy.rename(target)
                done.append(f"restored your {name}")
    if git.config_unset(cwd, "lockd.hookMode"):
        done.append("removed lockd.hookMode")
    return done or ["no lockd hooks installed here"]


def status(cwd: str) -> dict[str, Any]:
    hooks = _hooks_path(cwd)
    return {
        "hooks_dir": str(hooks),
        "mode": hook_mode(cwd),
        "hooks": {
            name: {
                "installed": _is_ours(hooks / name),
                "outdated": _template_of(hooks / name) not in (None, template_id()),
                "legacy": (hooks / f"{name}.legacy").exists(),
            }
            for name in HOOK_TYPES
        },
    }
