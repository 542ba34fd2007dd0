"""The CLI's and the hooks' client: the codec on a blocking socket.

Not `http.client`: importing it (and the `email` package it needs) cost a
third of the git hook's budget."""

from __future__ import annotations

import socket

from lockd.client import codec, wire
from lockd.client.api import Api, Req
from lockd.core.errors import LockdError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    from typing import Any


class Client(wire.BaseClient):
    """Synchronous client for the CLI and the hooks, on a plain socket.

    Not `http.client`: importing it (and the `email` package it needs) cost a
    third of the git hook's budget. The broker answers every non-stream
    request with Content-Length; chunked bodies are read too, for proxies in
    front of a team server. `https://` URLs wrap the socket in TLS."""

    TIMEOUT = 5.0
    _conn: socket.socket | None = None  # kept alive between calls

    def _connection(self) -> socket.socket:
        if self._conn is None:
            sock = socket.create_connection((self._host, self._port), timeout=self.timeout)
            # Without this, a request's small writes wait on delayed ACKs (~40 ms each).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._https:
                sock = wire.tls_context().wrap_socket(sock, server_hostname=self._host)
            self._conn = sock
        return self._conn

    def _response(self) -> tuple[int, bytes]:
        assert self._conn is not None
        response, body = codec.Response(), []
        while not response.done:
            data = self._conn.recv(65536)
            if not data:
                self.close()
                response.eof()
                break
            body += response.feed(data)
        if response.close:
            self.close()
        return response.status, b"".join(body)

    def call(self, req: Req) -> dict[str, Any]:
        payload = self._request_bytes(req)
        for attempt in (1, 2):
            reused = self._conn is not None
            try:
                conn = self._connection()
                conn.sendall(payload)
                return wire.decode(*self._response())
            except (BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                # Retry only on a kept-alive connection (the broker closes idle
                # ones): on a fresh one the broker may have acted, so say so.
                if attempt == 2 or not reused:
                    raise wire.unreachable(self.url, exc) from None
            except (OSError, ValueError) as exc:
                self.close()
                raise wire.unreachable(self.url, exc) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def alive(self) -> bool:
        try:
            return self.call(Api.health()).get("status") == "ok"
        except LockdError:
            return False
