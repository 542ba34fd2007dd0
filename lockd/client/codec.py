"""HTTP/1.1 for lockd's clients, without I/O: request bytes out, response
bytes in (as they arrive, in any pieces), body pieces and server-sent
events out. The sync client (CLI, hooks) and the async client (MCP server,
tests, benchmarks) both drive it, so framing, chunked decoding and "the
answer was cut off" are decided in one place and tested without sockets.

Stdlib only and nothing heavy at import: the git hook loads it on every commit.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    from typing import Any

MAX_HEAD = 64 * 1024  # a response head longer than this is not the broker's


class ProtocolError(OSError):
    """The bytes are not an HTTP/1.1 response lockd can read (an OSError, so
    callers treat it like any other broken connection)."""


def request_bytes(
    method: str, target: str, data: bytes | None, host: str, port: int, headers: dict[str, str]
) -> bytes:
    name = f"[{host}]" if ":" in host else host  # an IPv6 literal goes in brackets
    lines = [f"{method} {target} HTTP/1.1", f"Host: {name}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if data is not None:
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (data or b"")


def parse_head(block: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, content length, chunked, connection close) from a response head."""
    status_line, _, rest = block.partition(b"\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise ProtocolError(f"not an HTTP response: {status_line[:80]!r}") from None
    length, chunked, close = None, False, False
    for line in rest.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            try:
                length = int(value)
            except ValueError:
                raise ProtocolError(f"bad Content-Length: {value[:40]!r}") from None
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            close = value == "close"
    return status, length, chunked, close


class Response:
    """One response, decoded from the bytes fed to it.

    `feed` returns the body pieces that became available; `done` turns true
    once the body is complete (Content-Length reached, the last chunk, or
    `eof()` for a body that runs until the connection closes)."""

    def __init__(self) -> None:
        self._buf = b""
        self.status = 0
        self.length: int | None = None
        self.chunked = False
        self.close = False
        self.head = False
        self.done = False
        self._left = 0  # body bytes still due, or data bytes left in the current chunk
        self._crlf = False  # a chunk's data is followed by CRLF
        self._trailers = False
        self._received = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        if not self.head and not self._read_head():
            return []
        if self.chunked:
            return self._chunks()
        if self.length is None:  # until EOF
            out, self._buf = ([self._buf] if self._buf else []), b""
            return out
        piece, self._buf = self._buf[: self._left], self._buf[self._left :]
        self._left -= len(piece)
        self._received += len(piece)
        self.done = self._left == 0
        return [piece] if piece else []

    def eof(self) -> None:
        """The connection closed: fine for a body that runs to EOF, else cut off."""
        if self.done:
            return
        if not self.head:
            if not self._buf:
                raise ConnectionResetError("the broker closed the connection")
            raise ProtocolError("the connection closed inside the response head")
        if not self.chunked and self.length is None:
            self.done, self.close = True, True
            return
        got = f"after {self._received} of {self.length} bytes" if self.length else "mid-chunk"
        # The broker died between its head and its body (kill -9 mid-answer):
        # what it did is unknown, exactly as if no answer had come.
        raise ProtocolError(f"the answer was cut off {got}")

    def _read_head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD:
                raise ProtocolError(f"response head over {MAX_HEAD} bytes")
            return False
        block, self._buf = self._buf[:end], self._buf[end + 4 :]
        self.status, self.length, self.chunked, self.close = parse_head(block)
        self.head = True
        if not self.chunked and self.length is not None:
            self._left = self.length
            self.done = self.length == 0
        if self.length is None and not self.chunked:
            self.close = True
        return True

    def _chunks(self) -> list[bytes]:
        out: list[bytes] = []
        while not self.done:
            if self._trailers:  # after the last chunk: trailer lines, then a blank one
                line = self._line()
                if line is None:
                    break
                self.done = line == b""
            elif self._left:  # inside a chunk's data: hand out whatever came
                piece, self._buf = self._buf[: self._left], self._buf[self._left :]
                self._left -= len(piece)
                if piece:
                    out.append(piece)
                if self._left:
                    break
            elif self._crlf:  # the CRLF that ends a chunk's data
                if len(self._buf) < 2:
                    break
                self._buf, self._crlf = self._buf[2:], False
            else:
                line = self._line()
                if line is None:
                    break
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size: {line[:40]!r}") from None
                self._trailers = size == 0
                self._left, self._crlf = size, size > 0
        self._received += sum(len(p) for p in out)
        return out

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > 1024:
                raise ProtocolError("a chunk size or trailer line over 1024 bytes")
            return None
        line, self._buf = self._buf[:end], self._buf[end + 2 :]
        return line


class Events:
    """Server-sent events from body pieces: (event, JSON data) per blank line."""

    def __init__(self) -> None:
        self._pending = b""
        self._event = "message"
        self._data: list[str] = []

    def feed(self, piece: bytes) -> list[tuple[str, dict[str, Any]]]:
        self._pending += piece
        out: list[tuple[str, dict[str, Any]]] = []
        while b"\n" in self._pending:
            raw, self._pending = self._pending.split(b"\n", 1)
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if not line:
                if self._data:
                    out.append((self._event, json.loads("\n".join(self._data))))
                self._event, self._data = "message", []
            elif line.startswith("event:"):
                self._event = line[6:].strip()
            elif line.startswith("data:"):
                self._data.append(line[5:].strip())
        return out
