"""`LOCKD_*` settings, the state dir, the token file and the limits.

Read lazily from the environment each call so tests (and users) can point one
process at several brokers by changing the environment.
"""

from __future__ import annotations

import os

from lockd.core.errors import LockdError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    from pathlib import Path

DEFAULT_PORT = 7899
HOST = "127.0.0.1"

MAX_MESSAGE_BYTES = 64 * 1024
MAX_SUMMARY_CHARS = 1000
MAX_REASON_CHARS = 1000
MAX_NAME_CHARS = 64
MAX_CHECK_PATHS = 1000
MAX_BODY_BYTES = 256 * 1024

HEARTBEAT_SECONDS = 10.0  # how often sessions renew their lease
LEASE_SECONDS = 60.0  # a peer silent this long is dead
SWEEP_SECONDS = 1.0  # how often the broker looks for dead peers and expired TTLs
DELIVERED_RETENTION_DAYS = 30.0  # read or acknowledged messages older than this are purged
PERSON_TTL_SECONDS = 8 * 3600  # a person's claims expire after this by default
NAME_HOLD_SECONDS = 24 * 3600.0  # a gone peer's name stays its own this long
ACTIVITY_SECONDS = 5.0  # a session's look at its checkout's git stamps (no process)
ACTIVITY_RESCAN_SECONDS = 30.0  # and a git status at least this often
RETENTION_DAYS = 3.0  # released intents and their events are compacted after this
PEER_RETENTION_DAYS = 7.0  # a gone peer with nothing unread is purged after this
RETENTION_EVERY_SECONDS = 3600.0  # how often the broker runs retention


def home_dir() -> str:
    """The state dir: database, token, logs. Created 0700 on first use.
    A plain string: the hooks read the token from here without pathlib."""
    raw = os.environ.get("LOCKD_HOME")
    if raw:
        path = os.path.expanduser(raw)
    else:
        import platformdirs

        path = platformdirs.user_state_dir("lockd", appauthor=False)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def make_private() -> list[str]:
    """LOCKD_HOME 0700 and what the broker keeps in it (database, -wal, -shm,
    token, logs, sessions, lock files) 0600, dirs 0700, whatever the umask or
    whoever made them wider: the token and the sessions' credentials are in
    there. Returns one line per change, for the broker's log. Raises when the
    home cannot be made private (another user's directory)."""
    home = home_dir()
    changes: list[str] = []

    def narrow(path: str, private: int) -> None:
        st = os.lstat(path)
        if st.st_mode & 0o077 and not os.path.islink(path):
            os.chmod(path, private)
            changes.append(f"{path}: mode {st.st_mode & 0o777:o} -> {private:o}")

    try:
        narrow(home, 0o700)
    except PermissionError:
        raise LockdError(
            "forbidden",
            f"LOCKD_HOME {home} is open to other users and not yours to change "
            f"(owner uid {os.stat(home).st_uid}): point LOCKD_HOME at a directory of your own",
        ) from None
    for folder in (home, os.path.join(home, "logs"), os.path.join(home, "sessions")):
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_symlink() or entry.stat(follow_symlinks=False).st_uid != os.geteuid():
                continue
            if entry.is_dir() and folder == home and entry.name in ("logs", "sessions"):
                narrow(entry.path, 0o700)
            elif entry.is_file():
                narrow(entry.path, 0o600)
    return changes


def home() -> Path:
    from pathlib import Path

    return Path(home_dir())


def port() -> int:
    raw = os.environ.get("LOCKD_PORT", str(DEFAULT_PORT))
    try:
        value = int(raw)
    except ValueError:
        raise LockdError("invalid", f"LOCKD_PORT={raw!r} is not a port number") from None
    if not 0 < value < 65536:
        raise LockdError("invalid", f"LOCKD_PORT={raw!r} is out of range 1-65535")
    return value


def lease_seconds() -> float:
    """LOCKD_LEASE_SECONDS (the broker's setting): silence after which an agent
    is dead. Keep it well above the sessions' HEARTBEAT_SECONDS."""
    return _seconds("LOCKD_LEASE_SECONDS", LEASE_SECONDS, 1, 86400, "1-86400")


def name_hold_seconds() -> float:
    """LOCKD_NAME_HOLD_SECONDS (the broker's setting): how long a peer that is
    gone keeps its name, so that messages to that name wait in its inbox and a
    newcomer asking for it gets a suffixed one. 0: free as soon as it is gone."""
    return _seconds(
        "LOCKD_NAME_HOLD_SECONDS", NAME_HOLD_SECONDS, 0, 30 * 86400, "0-2592000 (30 days)"
    )


def activity_seconds() -> tuple[float, float]:
    """(LOCKD_ACTIVITY_SECONDS, LOCKD_ACTIVITY_RESCAN_SECONDS): how often a
    session's MCP server looks at its checkout's git stamps (no process), and
    how often it reads git status anyway (edits git has not indexed move no
    stamp). 0 turns activity scans off."""
    every = _seconds("LOCKD_ACTIVITY_SECONDS", ACTIVITY_SECONDS, 0, 3600, "0-3600")
    rescan = _seconds("LOCKD_ACTIVITY_RESCAN_SECONDS", ACTIVITY_RESCAN_SECONDS, 0.1, 86400,
                      "0.1-86400")  # fmt: skip
    return every, rescan


def retention_days() -> float:
    """LOCKD_RETENTION_DAYS (the broker's setting): released and expired
    intents, and the events of intents no longer live, are deleted this many
    days after they were recorded. The dashboard shows the most recent ones."""
    return _days("LOCKD_RETENTION_DAYS", RETENTION_DAYS)


def peer_retention_days() -> float:
    """LOCKD_PEER_RETENTION_DAYS (the broker's setting): a peer gone this many
    days with nothing it has not seen is deleted, with its session file; it
    registers anew if it comes back. Never sooner than its name hold ends."""
    return max(_days("LOCKD_PEER_RETENTION_DAYS", PEER_RETENTION_DAYS), name_hold_seconds() / 86400)


def message_retention_days() -> float:
    """LOCKD_MESSAGE_RETENTION_DAYS (the broker's setting): a message read, or
    pushed to a session and acknowledged, is deleted this many days after."""
    return _days("LOCKD_MESSAGE_RETENTION_DAYS", DELIVERED_RETENTION_DAYS)


def retention_every_seconds() -> float:
    """LOCKD_RETENTION_EVERY_SECONDS (the broker's setting): how often retention runs."""
    return _seconds("LOCKD_RETENTION_EVERY_SECONDS", RETENTION_EVERY_SECONDS, 1, 86400, "1-86400")


def _days(name: str, default: float) -> float:
    """Days from the environment (a bare number; `12h`, `90m` work too), 0-3650."""
    return _seconds(name, default * 86400, 0, 3650 * 86400, "0-3650 days", bare="d") / 86400


def _seconds(
    name: str, default: float, low: float, high: float, span: str, bare: str = "s"
) -> float:
    """Seconds from the environment, in [low, high]; unset or blank: `default`.
    A bare number counts in `bare` (seconds, unless the name says days);
    `90s`, `15m`, `1h30m` work too."""
    from lockd.core.durations import parse, within

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    unit = "days" if bare == "d" else "seconds"
    try:
        parse(raw, name, bare=bare)
    except LockdError:
        raise LockdError(
            "invalid", f"{name}={raw!r} is not a number of {unit} (or 90s, 15m, 1h30m) in {span}"
        ) from None
    return within(raw, name, low, high, bare=bare)  # out of range: said in the unit typed


def remote_url() -> str | None:
    """`LOCKD_URL` when the broker lives elsewhere (never auto-started then)."""
    raw = os.environ.get("LOCKD_URL", "").strip()
    return raw.rstrip("/") or None


def broker_url() -> str:
    return remote_url() or f"http://{HOST}:{port()}"


def ca_file() -> str | None:
    """`LOCKD_CA`: the CA bundle (or a self-signed certificate) that a team
    server's TLS certificate is checked against; else the system's CAs."""
    raw = os.environ.get("LOCKD_CA", "").strip()
    if not raw:
        return None
    path = os.path.expanduser(raw)
    if not os.path.isfile(path):
        raise LockdError(
            "invalid",
            f"LOCKD_CA={raw!r} is not a file: point it at the team server's CA bundle "
            "or its self-signed certificate (PEM)",
        )
    return path


def db_path() -> Path:
    return home() / "lockd.db"


def log_path() -> Path:
    (home() / "logs").mkdir(mode=0o700, exist_ok=True)
    return home() / "logs" / "broker.log"


def token_path() -> Path:
    return home() / "token"


def read_token() -> str | None:
    """The broker token, from `LOCKD_TOKEN` or `LOCKD_HOME/token`."""
    env = os.environ.get("LOCKD_TOKEN")
    if env:
        return env.strip()
    try:
        with open(os.path.join(home_dir(), "token")) as fh:
            return fh.read().strip() or None
    except FileNotFoundError:
        return None


def ensure_token() -> str:
    """Create the token file 0600 atomically if missing; return the token."""
    path = token_path()
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    import secrets  # only the broker's first start needs it

    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".token.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    try:
        os.link(tmp, path)  # fails if another process won the race: keep theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def peer_name_override() -> str | None:
    name = os.environ.get("LOCKD_NAME", "").strip()
    return name or None
