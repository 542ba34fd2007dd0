"""stdin/stdout for the MCP server on the event loop itself.

The SDK's default stdio transport reads each line and writes (then flushes)
each message through a worker thread: three thread hand-offs per tool call
and two per pushed notification, each worth up to milliseconds on a busy
2-core machine. Here the same pipes are read and written by asyncio directly.

As the SDK does, the wire descriptors are moved out of the way first: fd 0
reads /dev/null and fd 1 goes to stderr, so a stray `print` in any library
cannot corrupt the protocol. Where stdin/stdout are not pipes (a file, a TTY)
the SDK's own transport is used instead.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.stdio import stdio_server

MAX_LINE = 64 * 1024 * 1024  # one JSON-RPC message per line


class _Lines:
    """The async line iterator `stdio_server` reads from."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self.reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Out:
    """The async text sink `stdio_server` writes to."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def write(self, text: str) -> None:
        self.writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self.writer.drain()


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def event_loop_stdio() -> AsyncIterator[tuple[Any, Any]]:
    """(read_stream, write_stream) for `Server.run`, as `stdio_server()` gives."""
    if not (_is_pipe(0) and _is_pipe(1)):
        async with stdio_server() as streams:
            yield streams
        return
    wire_in, wire_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    rfile = os.fdopen(wire_in, "rb", buffering=0)
    wfile = os.fdopen(wire_out, "wb", buffering=0)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), rfile
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, wfile
    )
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    try:
        async with stdio_server(stdin=_Lines(reader), stdout=_Out(writer)) as streams:  # type: ignore[arg-type]
            yield streams
    finally:
        read_transport.close()
        write_transport.close()
