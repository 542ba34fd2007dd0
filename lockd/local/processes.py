"""Is a process alive, and who are its ancestors? pid together with start
time, so a reused pid never passes for a session that died."""

from __future__ import annotations

import os

import psutil

# Launchers that stand between an agent and the MCP server it starts, by the
# program a process runs: its executable, or the script its interpreter runs.
WRAPPERS = frozenset({"uvx", "uv", "npx", "npm", "pnpm", "bunx", "pipx", "env", "timeout",
                      "nohup", "sh", "bash", "dash", "zsh", "fish", "lockd-mcp"})  # fmt: skip
PYTHON_WRAPPERS = frozenset({"uv", "uvx", "pipx", "lockd-mcp", "mcp_tools", "mcp_tools.server"})
NODE_WRAPPERS = frozenset({"npx", "npx-cli.js", "npm", "npm-cli.js", "pnpm", "pnpm.cjs",
                           "pnpm.js", "bunx"})  # fmt: skip
# Interpreter options that take a value, so the script is not the next word.
_PY_VALUE_FLAGS = frozenset({"-X", "-W", "-Q", "--check-hash-based-pycs"})
_NODE_VALUE_FLAGS = frozenset({"-r", "--require", "--import", "--loader", "-C", "--conditions"})


def script_of(cmdline: list[str], value_flags: frozenset[str] = _PY_VALUE_FLAGS) -> str | None:
    """What an interpreter's command line runs: `-m`'s module, else the first
    word after the options (its basename); None for `-c`/`-e` code or a REPL.
    Arguments after the script are never looked at: an agent that merely
    names lockd-mcp in its own arguments is not a launcher."""
    args = iter(cmdline[1:])
    for arg in args:
        if arg in ("-m",):
            return next(args, None)
        if arg.startswith("-m") and len(arg) > 2 and not arg.startswith("--"):
            return arg[2:]
        if arg in ("-c", "-e", "--eval", "-p", "--print", "-"):
            return None
        if arg in value_flags:
            next(args, None)
            continue
        if arg.startswith("-"):
            continue
        return os.path.basename(arg)
    return None


def process_start_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def resident_bytes() -> int:
    """This process's resident memory (RSS), as `ps` and the soak measure it."""
    return int(psutil.Process().memory_info().rss)


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


def is_wrapper(name: str, cmdline: list[str]) -> bool:
    """Whether a process (its name, its command line) is a launcher to see through."""
    name = name.lower()
    if name in WRAPPERS:
        return True
    if name.startswith("python"):
        return script_of(cmdline) in PYTHON_WRAPPERS
    if name in ("node", "nodejs"):
        return script_of(cmdline, _NODE_VALUE_FLAGS) in NODE_WRAPPERS
    return False


def _is_wrapper(proc: psutil.Process) -> bool:
    try:
        return is_wrapper(proc.name(), proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
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


def port_holder(port: int) -> str | None:
    """Who listens on local TCP `port`, as far as this user may see: `nc (pid
    4242)`, a lockd broker of another LOCKD_HOME, or another user's program;
    None when nobody listens. For error messages only: it scans every socket."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        if conn.pid is None:
            return "a program of another user"
        try:
            proc = psutil.Process(conn.pid)
            name, cmdline = proc.name(), proc.cmdline()
        except psutil.Error:
            return f"pid {conn.pid}"
        if "serve" in cmdline and any(os.path.basename(a) == "lockd" for a in cmdline):
            return f"a lockd broker of another LOCKD_HOME (pid {conn.pid})"
        return f"{name} (pid {conn.pid})"
    return None
