"""A real broker subprocess for tests and benchmarks: `lockd serve` on a free
port with its own LOCKD_HOME. Shipped in the package so that users' own
integration tests can use it too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockd.client.api import Api
from lockd.client.sync import Client

LOCKD_ENV = (
    "LOCKD_HOME",
    "LOCKD_PORT",
    "LOCKD_URL",
    "LOCKD_TOKEN",
    "LOCKD_NAME",
    "LOCKD_PEER",
    "LOCKD_HOOK_MODE",
    "LOCKD_SESSION_KEY",
    "LOCKD_DB",
    "LOCKD_CA",
    "LOCKD_TLS_CERT",
    "LOCKD_TLS_KEY",
    "LOCKD_PUBLIC_NAME",
    "LOCKD_ACTIVITY_SECONDS",
    "LOCKD_ACTIVITY_RESCAN_SECONDS",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    home: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    db: str | None = None  # `lockd serve --db`: a postgresql:// URL; None is SQLite
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. LOCKD_LEASE_SECONDS
    serve_args: tuple[str, ...] = ()  # more `lockd serve` flags: --host, --tls-cert…
    public_url: str | None = None  # how clients reach it, when not http://127.0.0.1:port

    @property
    def url(self) -> str:
        return self.public_url or f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in LOCKD_ENV}
        env.update(LOCKD_HOME=str(self.home), LOCKD_PORT=str(self.port), **self.extra_env)
        return env

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def start(self, timeout: float = 15.0) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lockd",
                "serve",
                "--port",
                str(self.port),
                *(["--db", self.db] if self.db else []),
                *self.serve_args,
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            if Client(self.url, token="", timeout=0.5).alive():
                return
            time.sleep(0.02)
        raise RuntimeError("broker did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, credential: str | None = None) -> Client:
        return Client(self.url, token=self.token, credential=credential)

    def register(self, cwd: str = "/tmp/w", repo_id: str = "dir:/tmp/w", **extra: Any) -> Client:
        """A registered peer's client (kind person unless told: no pid liveness)."""
        fields: dict[str, Any] = {
            "cwd": cwd,
            "repo_id": repo_id,
            "repo_root": cwd,
            "kind": "person",
            "client": "test",
        }
        fields.update(extra)
        peer = self.client().call(Api.register(**fields))
        client = self.client(peer["credential"])
        client.peer = peer  # type: ignore[attr-defined]
        return client
