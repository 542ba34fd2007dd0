"""Is a process alive, and who are its ancestors? pid together with start
time, so a reused pid never passes for a session that died."""

from __future__ import annotations

import os

import psutil

# Launchers that stand between an agent and the MCP server it starts.
WRAPPERS = ("uvx", "uv", "npx", "npm", "pnpm", "bunx", "pipx", "env", "timeout", "nohup",
            "sh", "bash", "dash", "zsh", "fish", "lockd-mcp")  # fmt: skip
PYTHON_LAUNCHERS = ("-m uv", "uvx", "pipx", "lockd-mcp", "mcp_tools")
NODE_LAUNCHERS = ("npx", "npm-cli", "npm", "pnpm")


def process_start_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def is_alive(pid: int, start_time: float | None = None) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return start_time is None or abs(proc.create_time() - start_time) < 0.01
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def ancestors(pid: int | None = None) -> list[tuple[int, float | None]]:
    """(pid, start time) from the parent of `pid` up to the root."""
    out: list[tuple[int, float | None]] = []
    try:
        proc = psutil.Process(pid or os.getpid()).parent()
        while proc is not None and len(out) < 64:
            out.append((proc.pid, proc.create_time()))
            proc = proc.parent()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return out


def _is_wrapper(proc: psutil.Process) -> bool:
    try:
        name = proc.name().lower()
        cmd = " ".join(proc.cmdline()).lower()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    if name in WRAPPERS:
        return True
    if name.startswith("python"):
        return any(w in cmd for w in PYTHON_LAUNCHERS)
    if name in ("node", "nodejs"):
        return any(w in cmd for w in NODE_LAUNCHERS)
    return False


def agent_pid(mcp_pid: int | None = None) -> int:
    """The agent process that started the MCP server, seen through launchers
    such as `uvx`, `npx` or `sh -c`: the first ancestor that is not one."""
    try:
        proc = psutil.Process(mcp_pid or os.getpid()).parent()
        while proc is not None and _is_wrapper(proc):
            parent = proc.parent()
            if parent is None or parent.pid <= 1:
                break
            proc = parent
        return proc.pid if proc is not None else os.getppid()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return os.getppid()
