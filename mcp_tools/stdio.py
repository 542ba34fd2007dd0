"""lockd-mcp's stdio wire: framing, malformed frames, and the protocol era.

**The era, chosen deliberately (mcp 2.3, Claude Code 2.1.332).** mcp 2.3's
stdio server serves two protocol eras and lets the client's first request
decide (`mcp.server.runner.serve_dual_era_loop`): `initialize` opens the
handshake ("legacy") era, an enveloped request such as `server/discover`
opens the 2026-07-28 ("modern") era and from then on `initialize` is refused
(-32022). Claude Code opens with `server/discover`; if that succeeds it runs
the modern era, in which it *drops channel notifications* ("connection
negotiated a modern protocol revision with no unsolicited notification
path"), so lockd's pushed messages would never reach the model.

So this wire answers `server/discover` itself, before the era is decided,
with -32601 (method not found): the answer of a handshake-only server.
Claude Code (and mcp's own client in `mode="auto"`) then falls back to
`initialize`, the SDK's loop serves the legacy era, and Claude Code accepts
`notifications/claude/channel`. A client that insists on the modern era
(it sends enveloped requests without a working discover, such as mcp's
client pinned to a 2026 version) still gets every tool: its first enveloped
request opens the modern era as before, and `Wire.era` tells the server that
push is off for this session. Pinned with mcp (`mcp>=2.3,<2.4` in
pyproject.toml); `tests/test_mcp_wire.py` reads what real clients negotiated.

**Malformed frames** get the JSON-RPC error the spec names instead of
silence: bytes that are not UTF-8 JSON -32700 (id null); a frame that is not
a JSON-RPC message -32600; a lone surrogate (`"\\ud800"`, valid JSON but not
Unicode text) -32602 in `params`, -32600 elsewhere.

**Pipes on the event loop.** The SDK's stdio transport reads and writes
through worker threads (three hand-offs per tool call, two per pushed
notification, each up to milliseconds on a busy 2-core machine). Here pipes
are read and written by asyncio directly. As the SDK does, the wire
descriptors are moved out of the way first: fd 0 reads /dev/null and fd 1
goes to stderr, so a stray `print` in any library cannot corrupt the
protocol. A stdin that is a file or a TTY is read through a thread instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

log = logging.getLogger("lockd.mcp.wire")
MAX_LINE = 64 * 1024 * 1024  # one JSON-RPC message per line
PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"  # the 2026 envelope's mark
DISCOVER = "server/discover"
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
Era = Literal["legacy", "modern"]


def lone_surrogate_at(value: Any, where: str = "") -> str | None:
    """The JSON path of the first string holding a lone surrogate, else None.
    Such strings cannot be encoded as UTF-8: a reply that echoes one fails."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path or "(value)"
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str) and lone_surrogate_at(key) is not None:
                    return f"{path}.{key.encode('utf-8', 'backslashreplace').decode()}"
                stack.append((f"{path}.{key}" if path else str(key), sub))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", sub) for i, sub in enumerate(item))
    return None


def _request_id(frame: Any) -> int | str | None:
    if isinstance(frame, dict):
        rid = frame.get("id")
        if isinstance(rid, str) and lone_surrogate_at(rid) is None:
            return rid
        if isinstance(rid, int) and not isinstance(rid, bool):
            return rid
    return None


def error_frame(rid: int | str | None, code: int, message: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}})


class Wire:
    """Decodes frames for the SDK's loop; answers what must not reach it."""

    def __init__(self, on_era: Callable[[Era], None] | None = None) -> None:
        self.era: Era | None = None
        self._on_era = on_era

    def decode(self, line: bytes) -> SessionMessage | str | None:
        """A message for the server, an error frame to write back, or None (skip)."""
        if not line.strip():
            return None
        try:
            frame = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return error_frame(None, PARSE_ERROR, f"parse error: not a UTF-8 JSON text ({exc})")
        except RecursionError:
            return error_frame(None, PARSE_ERROR, "parse error: JSON nested too deeply")
        rid = _request_id(frame)
        bad = lone_surrogate_at(frame)
        if bad is not None:
            code = INVALID_PARAMS if bad.startswith("params") else INVALID_REQUEST
            return error_frame(
                rid, code, f"{bad} holds a lone surrogate: strings must be valid Unicode text"
            )
        try:
            message = types.jsonrpc_message_adapter.validate_python(frame, by_name=False)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "frame"
            return error_frame(
                rid, INVALID_REQUEST, f"invalid request: not a JSON-RPC 2.0 message ({where})"
            )
        if self.era is None and isinstance(message, types.JSONRPCRequest):
            if message.method == DISCOVER:
                return error_frame(
                    message.id,
                    METHOD_NOT_FOUND,
                    "lockd-mcp serves the initialize handshake first: Claude Code accepts "
                    "channel notifications (pushed messages) only in that protocol era",
                )
            self._decide(message)
        return SessionMessage(message)

    def _decide(self, opening: types.JSONRPCRequest) -> None:
        # The same rule as mcp 2.3's serve_dual_era_loop, which decides for real.
        meta = (opening.params or {}).get("_meta")
        modern = (
            opening.method != "initialize"
            and isinstance(meta, dict)
            and PROTOCOL_VERSION_KEY in meta
        )
        self.era = "modern" if modern else "legacy"
        log.info("client opened the %s protocol era with %s", self.era, opening.method)
        if self._on_era is not None:
            self._on_era(self.era)


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _ThreadLines:
    """Lines of a stdin that asyncio cannot watch (a file, a TTY)."""

    def __init__(self, fd: int) -> None:
        self.fh = os.fdopen(fd, "rb", buffering=0, closefd=False)

    async def readline(self) -> bytes:
        return await anyio.to_thread.run_sync(self.fh.readline, abandon_on_cancel=True)


async def _open_pipes() -> tuple[Any, Callable[[bytes], Any], Callable[[], None]]:
    """(reader with `readline`, async write(bytes), close) over the wire fds."""
    wire_in, wire_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    loop = asyncio.get_running_loop()
    closers: list[Any] = []
    if _is_pipe(wire_in):
        reader: Any = asyncio.StreamReader(limit=MAX_LINE)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
        )
        closers.append(transport)
    else:
        reader = _ThreadLines(wire_in)
    if _is_pipe(wire_out):
        wtransport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
        )
        writer = asyncio.StreamWriter(wtransport, protocol, None, loop)
        closers.append(wtransport)

        async def write(data: bytes) -> None:
            writer.write(data)
            await writer.drain()
    else:

        async def write(data: bytes) -> None:
            await anyio.to_thread.run_sync(os.write, wire_out, data)

    def close() -> None:
        for c in closers:
            c.close()

    return reader, write, close


@asynccontextmanager
async def event_loop_stdio(wire: Wire) -> AsyncIterator[tuple[Any, Any]]:
    """(read_stream, write_stream) for `Server.run`, over this process's stdio."""
    reader, write, close = await _open_pipes()
    to_server, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, from_server = create_context_streams[SessionMessage](0)
    replies = from_server  # the server's frames, plus the wire's own error frames
    own_send, own_recv = anyio.create_memory_object_stream[str](16)

    async def read_loop() -> None:
        async with to_server, own_send:
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    await own_send.send(
                        error_frame(None, PARSE_ERROR, f"frame longer than {MAX_LINE} bytes")
                    )
                    continue
                if not line:
                    return
                item = wire.decode(line)
                if isinstance(item, str):
                    await own_send.send(item)
                elif item is not None:
                    await to_server.send(item)

    async def write_server() -> None:
        async with replies:
            async for message in replies:
                await write(message.message.model_dump_json(by_alias=True, exclude_unset=True)
                            .encode("utf-8") + b"\n")  # fmt: skip

    async def write_own() -> None:
        async with own_recv:
            async for text in own_recv:
                await write(text.encode("utf-8") + b"\n")

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_loop)
            tg.start_soon(write_server)
            tg.start_soon(write_own)
            yield read_stream, write_stream
            tg.cancel_scope.cancel()
    finally:
        close()
