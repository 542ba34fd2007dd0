"""The clients' HTTP/1.1 codec, fed the way sockets deliver: in any pieces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockd.client.codec import Events, ProtocolError, Response, parse_head, request_bytes


def decode(raw: bytes, cuts: list[int]) -> tuple[Response, bytes]:
    """Feed `raw` split at `cuts`, then EOF if the body is not complete."""
    response, body, last = Response(), b"", 0
    for cut in [*sorted(set(cuts)), len(raw)]:
        body += b"".join(response.feed(raw[last:cut]))
        last = cut
    if not response.done:
        response.eof()
    return response, body


BODY = b'{"peers": [], "text": "\\r\\n inside"}'
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\n" + BODY[:5] + b"\r\n" + format(len(BODY) - 5, "x").encode() + b"\r\n"
    + BODY[5:] + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
)  # fmt: skip
LENGTH = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


@given(st.lists(st.integers(0, len(CHUNKED)), max_size=12))
def test_chunked_body_in_any_pieces(cuts: list[int]) -> None:
    response, body = decode(CHUNKED, cuts)
    assert (response.status, body, response.done) == (200, BODY, True)


@given(st.lists(st.integers(0, len(LENGTH)), max_size=12))
def test_content_length_body_in_any_pieces(cuts: list[int]) -> None:
    response, body = decode(LENGTH, cuts)
    assert (response.status, body, response.close) == (404, BODY, True)


def test_body_until_eof_and_answers_cut_off() -> None:
    response, body = decode(b"HTTP/1.1 200 OK\r\n\r\nall of it", [5])
    assert body == b"all of it" and response.close
    with pytest.raises(ProtocolError, match="cut off after 3 of"):
        decode(LENGTH[: LENGTH.index(b"\r\n\r\n") + 7], [])
    with pytest.raises(ProtocolError, match="cut off mid-chunk"):
        decode(CHUNKED[:-20], [])
    with pytest.raises(ConnectionResetError):
        decode(b"", [])


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000,
    ],
)
def test_what_is_not_http_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(raw, [])


def test_request_bytes_and_head() -> None:
    raw = request_bytes("POST", "/v1/x?a=1", b"{}", "::1", 7899, {"Accept": "application/json"})
    assert raw.startswith(b"POST /v1/x?a=1 HTTP/1.1\r\nHost: [::1]:7899\r\n")
    assert raw.endswith(b"Content-Length: 2\r\n\r\n{}")
    assert parse_head(b"HTTP/1.1 204 No Content\r\nConnection: close") == (204, None, False, True)


@given(st.lists(st.integers(0, 80), max_size=8))
def test_events_across_piece_boundaries(cuts: list[int]) -> None:
    stream = b': ping\n\nevent: message\ndata: {"a": 1}\n\ndata: {"b":\ndata: 2}\r\n\r\n'
    events, got, last = Events(), [], 0
    for cut in [*sorted(set(c for c in cuts if c <= len(stream))), len(stream)]:
        got += events.feed(stream[last:cut])
        last = cut
    assert got == [("message", {"a": 1}), ("message", {"b": 2})]
