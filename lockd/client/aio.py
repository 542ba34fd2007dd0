"""The MCP server's client: the codec on asyncio streams, a few kept-alive
connections for concurrent calls, and the event stream. Not httpx: it took
half of the MCP server's CPU per tool call."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

from lockd.client import codec, wire
from lockd.client.api import Api, Req
from lockd.local import config

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from typing import Any

    Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class AsyncClient(wire.BaseClient):
    """The MCP server's client: the same lean HTTP/1.1 exchange on asyncio
    streams, a few kept-alive connections for concurrent calls, and the event
    stream. Not httpx: it took half of the MCP server's CPU per tool call."""

    TIMEOUT = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # wire.BaseClient's
        super().__init__(*args, **kwargs)
        self._idle: list[Conn] = []

    async def _open(self) -> Conn:
        import asyncio

        tls = wire.tls_context() if self._https else None
        # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancellation that
        # lands as the connection completes, and the cancelled task reads on forever.
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=tls, limit=2**24
            )
        sock = writer.get_extra_info("socket")
        if sock is not None:  # head and body go out together; no delayed-ACK stalls
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def _exchange(self, conn: Conn, payload: bytes) -> tuple[int, bytes, bool]:
        reader, writer = conn
        writer.write(payload)
        response, body = codec.Response(), []
        while not response.done:
            data = await reader.read(65536)
            if not data:
                response.eof()
                break
            body += response.feed(data)
        return response.status, b"".join(body), response.close

    async def call(self, req: Req) -> dict[str, Any]:
        """The broker's answer; a refusal raises its LockdError."""
        return wire.decode(*await self._roundtrip(req))

    async def exchange(self, req: Req) -> tuple[int, Any]:
        """(status, JSON body or None) without judging the status: for load
        generators and tests that count answers. Unreachable still raises."""
        status, body = await self._roundtrip(req)
        return status, json.loads(body) if body else None

    async def _roundtrip(self, req: Req) -> tuple[int, bytes]:
        import asyncio

        if self.token is None:
            self.token = config.read_token()
        payload = self._request_bytes(req)
        for attempt in (1, 2):
            conn = self._idle.pop() if self._idle else None
            reused = conn is not None
            done = False
            try:
                conn = conn or await self._open()
                async with asyncio.timeout(self.timeout):  # see _open: not wait_for
                    status, body, close = await self._exchange(conn, payload)
                done = True
            except wire.network_errors() as exc:
                # As the sync client: retry only a kept-alive connection the
                # broker closed; elsewhere it may have acted.
                stale = isinstance(exc, (ConnectionError, asyncio.IncompleteReadError))
                if attempt == 1 and reused and stale:
                    continue
                raise wire.unreachable(self.url, exc) from None
            finally:
                if conn is not None and not done:
                    conn[1].close()  # half-read or cancelled: never reuse it
            if close:
                conn[1].close()
            else:
                self._idle.append(conn)
            return status, body
        raise AssertionError("unreachable")

    async def stream(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield (event, data) from GET /v1/stream until it closes."""
        writer = None
        try:
            reader, writer = await self._open()
            writer.write(self._request_bytes(Api.stream(), accept="text/event-stream"))
            response, events, refusal = codec.Response(), codec.Events(), []
            while not response.done and (data := await reader.read(65536)):
                pieces = response.feed(data)
                if response.status >= 400:
                    refusal += pieces
                    continue
                for piece in pieces:
                    for event in events.feed(piece):
                        yield event
            if response.status >= 400:
                wire.decode(response.status, b"".join(refusal))
        except wire.network_errors() as exc:
            raise wire.unreachable(self.url, exc) from None
        finally:
            if writer is not None:
                writer.close()
        raise wire.unreachable(self.url, ConnectionResetError("the event stream ended"))

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()
