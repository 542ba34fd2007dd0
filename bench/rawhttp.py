"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for load generation.

The benchmarks measure the broker; a full-featured client (httpx) costs more
CPU per request than the broker does, and on a 2-core machine the load
generator would be what gets measured."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any


class RawClient:
    def __init__(self, port: int, token: str, credential: str | None = None) -> None:
        self.port = port
        self.base = [f"Host: 127.0.0.1:{port}", f"Authorization: Bearer {token}"]
        if credential:
            self.base.append(f"X-Lockd-Session: {credential}")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self.reader, self.writer

    def _head(self, method: str, path: str, body: bytes | None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", *self.base]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")

    async def request(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        reader, writer = await self._open()
        body = json.dumps(payload).encode() if payload is not None else None
        writer.write(self._head(method, path, body))
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        data = await reader.readexactly(length) if length else b""
        return status, json.loads(data) if data else None

    async def events(self, path: str = "/v1/stream") -> AsyncIterator[tuple[str, dict[str, Any]]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(self._head("GET", path, None))
        while (line := await reader.readline()) not in (b"\r\n", b""):
            pass
        event, data = "message", b""
        while True:
            size_line = await reader.readline()  # chunked transfer encoding
            if not size_line:
                return
            size = int(size_line.strip() or b"0", 16)
            chunk = await reader.readexactly(size + 2)
            for line in chunk[:-2].split(b"\n"):
                if line.startswith(b"event:"):
                    event = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data = line[5:].strip()
                elif not line and data:
                    yield event, json.loads(data)
                    event, data = "message", b""

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None
