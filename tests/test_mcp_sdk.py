"""mcp_tools.sdk: the request-state codec keeps the SDK's protection while
costing nothing until a `requestState` arrives."""

from __future__ import annotations

import pytest
from mcp.server.request_state import InvalidRequestState, RequestStateBoundary

from mcp_tools.sdk import LazyStateCodec
from mcp_tools.server import build_server


def test_the_codec_is_built_on_first_use_and_seals_as_the_sdk_does() -> None:
    codec = LazyStateCodec()
    assert not codec.built
    token = codec.seal(b'{"round": 1}')
    assert codec.built and token.startswith("v1.")
    assert codec.unseal(token) == b'{"round": 1}'
    with pytest.raises(InvalidRequestState):
        LazyStateCodec().unseal(token)  # another process's key
    with pytest.raises(InvalidRequestState):
        codec.unseal(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])


def test_the_server_guards_request_state_with_it_unbuilt() -> None:
    server = build_server()
    boundaries = [m for m in server.middleware if isinstance(m, RequestStateBoundary)]
    assert len(boundaries) == 1
    codec = boundaries[0]._security.codec
    assert isinstance(codec, LazyStateCodec) and not codec.built
