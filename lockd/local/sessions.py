"""Which peer is this process? Session files under LOCKD_HOME/sessions record
each agent session's credential, peer id and agent process, so hooks can find
"who is committing" (or whose inbox to print) by walking up their ancestors,
without asking the broker and without heavy imports."""

from __future__ import annotations

import contextlib
import json
import os

from lockd.local import config

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any


def _sessions_path() -> str:
    folder = os.path.join(config.home_dir(), "sessions")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def sessions_dir() -> Path:
    from pathlib import Path

    return Path(_sessions_path())


def read_sessions() -> list[dict[str, Any]]:
    """Every live-looking session file (os, not pathlib: the hooks read these)."""
    folder, out = _sessions_path(), []
    for name in os.listdir(folder):
        if not name.endswith(".json"):
            continue
        with contextlib.suppress(OSError, ValueError), open(os.path.join(folder, name)) as fh:
            data = json.loads(fh.read() or "{}")
            if data.get("peer_id"):
                out.append(data)
    return out


def remove_sessions_of(peer_ids: set[str]) -> int:
    """Delete the session files of these peers (purged by the broker: their
    credentials are dead), skipping any a running session holds (flocked).
    Returns how many went."""
    return remove_sessions(lambda data, _mtime: data.get("peer_id") in peer_ids)


def session_peer_ids() -> set[str]:
    """The peer ids the session files name (running sessions' too)."""
    return {str(s["peer_id"]) for s in read_sessions()}


def remove_sessions(drop: Callable[[dict[str, Any], float], bool]) -> int:
    """Delete each session file no running session holds (flocked) for which
    `drop(contents, mtime)` is true; contents are {} for an empty or unreadable
    file (an agent killed between creating its file and registering). Decided
    under the file's lock, so a session starting meanwhile keeps its file."""
    import fcntl

    folder, removed = _sessions_path(), 0
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if not name.endswith(".json"):
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        with os.fdopen(fd, "r+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue
            try:
                mtime = os.fstat(fh.fileno()).st_mtime
                data = json.loads(fh.read() or "{}")
            except OSError:
                continue
            except ValueError:  # torn or foreign: judged by its age alone
                data = {}
            if drop(data if isinstance(data, dict) else {}, mtime):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    removed += 1
    return removed


def session_of_ancestors(pid: int | None = None) -> dict[str, Any] | None:
    """The agent session whose agent process is an ancestor of this process.

    Matching pid *and* start time, so a reused pid never impersonates a peer.
    The nearest ancestor wins when sessions are nested."""
    sessions = read_sessions()
    if not sessions:
        return None
    by_agent = {}
    for s in sessions:
        if s.get("agent_pid"):
            by_agent.setdefault(s["agent_pid"], []).append(s)
    chain = _proc_ancestors(pid or os.getpid())
    if chain is None:
        from lockd.local import processes

        chain = processes.ancestors(pid or os.getpid())
    for apid, start in chain:
        for s in by_agent.get(apid, []):
            if (
                s.get("agent_start") is None
                or start is None
                or abs(s["agent_start"] - start) < 0.05
            ):
                return s
    return None


def _proc_ancestors(pid: int) -> list[tuple[int, float]] | None:
    """(pid, start time) of each ancestor, read from Linux's /proc the way
    psutil computes them (boot time + start ticks / CLK_TCK), because
    importing psutil costs ~14 ms of a git hook's 60. None where /proc cannot
    answer; then psutil walks instead (tests check the two agree)."""
    found: list[tuple[int, float]] = []
    try:
        with open("/proc/stat", "rb") as fh:
            boot = next(float(line.split()[1]) for line in fh if line.startswith(b"btime "))
        ticks = os.sysconf("SC_CLK_TCK")
        ppid, _ = _proc_stat(pid)
        while pid > 1 and len(found) < 64:  # each /proc/<pid>/stat read once
            next_ppid, start = _proc_stat(ppid)
            found.append((ppid, boot + start / ticks))
            pid, ppid = ppid, next_ppid
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return found


def _proc_stat(pid: int) -> tuple[int, int]:
    """(parent pid, start time in clock ticks) from "pid (comm) S ppid … starttime …"."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        stat = fh.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[19])  # fields 4 and 22 of proc(5)


# Agent clients that hand their MCP servers their own session id, which stays
# the same when the user resumes the session (`claude --resume`, `--continue`).
# Checked with the real CLIs; see README "Identity".
CLIENT_SESSION_VARS = (("CLAUDE_CODE_SESSION_ID", "claude-code"),)


def client_session(environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(client, session id) the agent client gave this MCP server, if any."""
    env = os.environ if environ is None else environ
    for var, client in CLIENT_SESSION_VARS:
        value = env.get(var, "").strip()
        if value:
            return client, value
    return None


def session_of_client(session_id: object) -> dict[str, Any] | None:
    """The session file of the agent session a hook payload names (its
    `session_id`): exact, and no process walk."""
    if not isinstance(session_id, str) or not session_id:
        return None
    for s in read_sessions():
        if s.get("client_session_id") == session_id:
            return s
    return None


def session_for(
    payload: dict[str, Any] | None = None, pid: int | None = None
) -> dict[str, Any] | None:
    """A hook's session: by the client's session id in its payload where the
    client gives one, else by walking up to the agent process."""
    found = session_of_client((payload or {}).get("session_id"))
    return found if found is not None else session_of_ancestors(pid)


def person_file() -> str:
    """Where the CLI keeps its person peer (lockd.client.session writes it)."""
    return os.path.join(config.home_dir(), "person.json")


def person() -> dict[str, Any] | None:
    """The person peer of this machine, as the CLI last registered it: its
    `peer_id` and `name` (None before the person's first command). An old
    file without the id is named by the person's name."""
    with contextlib.suppress(OSError, ValueError), open(person_file()) as fh:
        data = json.loads(fh.read() or "{}")
        ref = data.get("peer_id") or data.get("name")
        if isinstance(ref, str) and ref:
            return {"peer_id": ref, "name": data.get("name"), "person": True}
    return None


def committer(
    payload: dict[str, Any] | None = None, person_fallback: bool = True
) -> dict[str, Any] | None:
    """`LOCKD_PEER` (an id or name) overrides; else the hook's session; else,
    for a git hook (`person_fallback`), the person at this machine: a commit
    with no registered agent among its ancestors is the person's own."""
    override = os.environ.get("LOCKD_PEER", "").strip()
    if override:
        return {"peer_id": override, "override": True}
    found = session_for(payload)
    if found is None and person_fallback:
        return person()
    return found
