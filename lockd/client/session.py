"""Session lifecycle shared by the MCP server and the CLI: start the broker
when none runs, register, remember the credential so the peer id survives
broker restarts and MCP reconnects, heartbeat, and re-register on failure."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any

from lockd.client.aio import AsyncClient
from lockd.client.api import Api, Req
from lockd.client.sync import Client
from lockd.core.errors import KINDS, LockdError
from lockd.local import config, processes
from lockd.local.repo import RepoInfo, identify
from lockd.local.sessions import client_session, person_file, sessions_dir

log = logging.getLogger("lockd.client.session")


# ---- the broker -------------------------------------------------------------
@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_broker(wait: float = 20.0) -> None:
    """Start a detached broker unless one answers. Many sessions starting at
    once serialize on a lock file, so exactly one broker is spawned."""
    if config.remote_url():
        try:
            Client(timeout=2).call(Api.health())
        except LockdError as exc:  # say why: TLS trust, a wrong URL, a server down
            raise LockdError(
                exc.kind,
                f"{exc.message} (lockd never starts a local broker when LOCKD_URL is set)",
            ) from None
        return
    if Client(timeout=2).alive():
        return
    with _flock(config.home() / "spawn.lock"):
        if Client(timeout=2).alive():
            return
        log_file = open(config.log_path(), "ab")  # noqa: SIM115 - handed to the child
        start = log_file.tell()
        proc = subprocess.Popen(
            [sys.executable, "-m", "lockd", "serve", "--port", str(config.port())],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        log_file.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if Client(timeout=1).alive():
                return
            if proc.poll() is not None:
                raise _start_failure(proc.returncode, start)
            time.sleep(0.05)
        raise LockdError("unavailable", f"the broker did not answer within {wait:.0f} s")


def _start_failure(code: int, start: int) -> LockdError:
    """Why a broker we started exited: its own `lockd: …` line from the log
    (a port taken, names who holds it), with the kind its exit code means."""
    path = config.log_path()
    with open(path, "rb") as fh:
        fh.seek(start)
        tail = fh.read(65536).decode(errors="replace")
    said = [line[len("lockd: ") :] for line in tail.splitlines() if line.startswith("lockd: ")]
    kind = next((k for k, (_, exit_code) in KINDS.items() if exit_code == code), "unavailable")
    why = said[-1] if said else f"it exited at start (code {code})"
    return LockdError(kind, f"could not start the broker: {why}; see {path}")


def registration(
    info: RepoInfo, cwd: str, kind: str, client: str, name: str | None = None
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "cwd": cwd,
        "repo_id": info.repo_id,
        "repo_keys": list(info.keys),
        "repo_root": info.root,
        "client": client,
        "kind": kind,
        "name": name or config.peer_name_override(),
        "host": socket.gethostname(),
    }
    if kind == "agent":
        me = os.getpid()
        agent = processes.agent_pid()
        fields.update(
            pid=me,
            pid_start=processes.process_start_time(me),
            agent_pid=agent,
            agent_start=processes.process_start_time(agent),
        )
    return fields


def _older_broker(exc: LockdError, fields: dict[str, Any]) -> dict[str, Any]:
    """The registration again without `repo_keys`, if a broker started by an
    older lockd (still running after an upgrade) refused that field; else
    the error stands. Such a broker knows the repo by its id alone."""
    if exc.kind != "invalid" or "repo_keys" not in exc.message or "repo_keys" not in fields:
        raise exc
    log.warning("the broker predates repo keys: registering by repo id alone (lockd stop)")
    return {k: v for k, v in fields.items() if k != "repo_keys"}


# ---- a person at a terminal -------------------------------------------------
def _person_file() -> Path:
    return Path(person_file())


def person_client(
    cwd: str | None = None, start_broker: bool = True
) -> tuple[Client, dict[str, Any], RepoInfo]:
    """The CLI's own peer: one per user and LOCKD_HOME, kept in person.json."""
    cwd = os.path.realpath(cwd or os.getcwd())
    info = identify(cwd)
    if start_broker:
        ensure_broker()
    saved: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        saved = json.loads(_person_file().read_text())
    name = config.peer_name_override() or saved.get("name") or _user_name()
    client = Client()
    fields = registration(info, cwd, "person", "cli", name)
    fields["credential"] = saved.get("credential")
    try:
        peer = client.call(Api.register(**fields))
    except LockdError as exc:
        peer = client.call(Api.register(**_older_broker(exc, fields)))
    client.credential = peer["credential"]
    # The peer id too: the git hooks name the person as the committer by it.
    keep = {"credential": peer["credential"], "name": name, "peer_id": peer["peer_id"]}
    if any(saved.get(k) != v for k, v in keep.items()):
        _write_private(_person_file(), keep)
    return client, peer, info


def _user_name() -> str:
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "person"
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in user)[:60] or "person"


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


# ---- an agent session (the MCP server) -------------------------------------
class AgentSession:
    """One agent's identity at the broker, kept alive and re-established."""

    def __init__(
        self, cwd: str | None = None, client_name: str = "mcp", name: str | None = None
    ) -> None:
        self.cwd = os.path.realpath(cwd or os.getcwd())
        self.client_name = client_name
        self.name = name
        self.repo: RepoInfo = identify(self.cwd)
        self.peer: dict[str, Any] = {}
        self.api = AsyncClient()
        self._identity_fh: IO[str] | None = None
        self._identity_path: Path | None = None
        self._register_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._agent: tuple[int | None, float | None] = (None, None)
        self._client_session: str | None = None
        self.lapsed: dict[str, Any] | None = None  # the broker's word that our claims went

    @property
    def peer_id(self) -> str:
        return str(self.peer.get("peer_id", ""))

    def _claim_identity_file(self) -> dict[str, Any]:
        """Keyed by the client's own session id where it gives one (so a resumed
        session is the same peer, with its inbox), else by the agent process and
        cwd; LOCKD_SESSION_KEY overrides both. Flocked while this server lives,
        so a second server of the same agent gets its own peer."""
        agent = processes.agent_pid()
        self._agent = (agent, processes.process_start_time(agent))
        own = client_session()
        self._client_session = own[1] if own else None
        base = (
            os.environ.get("LOCKD_SESSION_KEY")
            or (own and f"{own[0]}:{own[1]}")
            or f"{agent}-{self._agent[1]}-{self.cwd}"
        )
        digest = hashlib.sha256(base.encode()).hexdigest()[:16]
        folder = sessions_dir()
        for n in range(1, 50):
            path = folder / f"{digest}-{n}.json"
            # 0600 from the start: it holds the session's credential.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fh = os.fdopen(fd, "r+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            self._identity_fh, self._identity_path = fh, path
            fh.seek(0)
            with contextlib.suppress(ValueError):
                return json.loads(fh.read() or "{}")
            return {}
        raise LockdError("conflict", "too many sessions of one agent in this directory")

    def _save_identity(self) -> None:
        if self._identity_fh is None:
            return
        fh = self._identity_fh
        fh.seek(0)
        fh.truncate()
        json.dump(
            {
                "credential": self.api.credential,
                "peer_id": self.peer_id,
                "name": self.peer.get("name"),
                "agent_pid": self._agent[0],
                "agent_start": self._agent[1],
                "pid": os.getpid(),
                "cwd": self.cwd,
                "repo_id": self.repo.repo_id,
                "client_session_id": self._client_session,
            },
            fh,
        )
        fh.flush()
        os.fsync(fh.fileno())

    async def start(self) -> dict[str, Any]:
        saved = self._claim_identity_file()
        self.api.credential = saved.get("credential")
        await self.register()
        return self.peer

    async def register(self) -> None:
        async with self._register_lock:
            await asyncio.to_thread(ensure_broker)
            self.api.token = config.read_token()
            fields = registration(self.repo, self.cwd, "agent", self.client_name, self.name)
            fields["credential"] = self.api.credential
            try:
                answer = await self.api.call(Api.register(**fields))
            except LockdError as exc:
                answer = await self.api.call(Api.register(**_older_broker(exc, fields)))
            peer = self._note_lapse(answer)
            self.api.credential = peer.pop("credential")
            self.peer = peer
            self._save_identity()

    def _note_lapse(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The broker says once, in whichever answer comes first after this
        session was declared gone, that its claims were released: keep it."""
        lapsed = answer.pop("lapsed", None)
        if lapsed:
            log.warning("%s", lapsed.get("message", "this session's claims were released"))
            self.lapsed = lapsed
        return answer

    def take_lapse(self) -> dict[str, Any] | None:
        lapsed, self.lapsed = self.lapsed, None
        return lapsed

    async def call(self, req: Req) -> dict[str, Any]:
        """A broker call that survives a broker restart: re-register and retry once."""
        try:
            return self._note_lapse(await self.api.call(req))
        except LockdError as exc:
            if exc.kind not in ("unavailable", "forbidden", "unauthorized"):
                raise
            if exc.kind == "forbidden" and "credential" not in exc.message:
                raise
        await self.register()
        return self._note_lapse(await self.api.call(req))

    def run_background(self, on_message: Callable[[dict[str, Any]], Awaitable[bool]]) -> None:
        self._tasks.append(asyncio.create_task(self._heartbeat_forever()))
        self._tasks.append(asyncio.create_task(self._stream_forever(on_message)))

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(config.HEARTBEAT_SECONDS)
            try:
                await self.call(Api.heartbeat())
            except LockdError as exc:
                log.warning("heartbeat failed: %s", exc.message)

    async def _stream_forever(
        self, on_message: Callable[[dict[str, Any]], Awaitable[bool]]
    ) -> None:
        """Hold the event stream; after each message is shown, acknowledge it."""
        backoff = 0.05
        while True:
            try:
                async for event, data in self.api.stream():
                    backoff = 0.05
                    if event == "message" and await on_message(data):
                        await self.api.call(Api.ack([data["message_id"]]))
            except LockdError as exc:
                log.info("stream closed: %s", exc.message)
                if exc.kind in ("forbidden", "unauthorized", "unavailable"):
                    with contextlib.suppress(LockdError):
                        await self.register()
            except Exception:
                log.exception("stream failed")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def close(self, goodbye: bool = True) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if goodbye and self.peer:
            with contextlib.suppress(LockdError):
                await self.api.call(Api.goodbye())
        await self.api.aclose()
        if self._identity_fh is not None:
            self._identity_fh.close()
