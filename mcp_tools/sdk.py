"""Two of `MCPServer()`'s defaults, kept in function but not paid for at start.

Every session runs its own lockd-mcp, so what the SDK (mcp 2.3) builds at start
is resident memory each session holds (`bench/bench_clients.py`, README "Under
the real Claude Code"). Two of those things do nothing for a lockd session:

- `configure_logging`, which `MCPServer()` calls: a `logging.basicConfig` with a
  rich handler. Logging is `main()`'s (mcp.log, set before the server exists, so
  that basicConfig never took effect), yet it imported rich wherever rich is
  installed: about 1.5 MiB.
- the request-state key. `MCPServer()` installs `RequestStateSecurity.ephemeral()`,
  which derives an AES-GCM key at once, and that first use of OpenSSL costs
  1.4 MiB. The key only seals and opens `requestState`, the multi-round state of
  tools that ask the client for input (the 2026-07-28 protocol); lockd's tools
  never do. `LazyStateCodec` is the same codec under the same kind of key (a
  random one held by this process alone), built the first time a `requestState`
  arrives, so a forged one is still refused.
"""

from __future__ import annotations

import os

import mcp.server.mcpserver.server as sdk_server
from mcp.server.request_state import AESGCMRequestStateCodec, RequestStateSecurity


def _no_sdk_logging(level: str = "INFO") -> None:
    """Stands in for the SDK's `configure_logging` (see the module docstring)."""


def skip_sdk_logging() -> None:
    sdk_server.configure_logging = _no_sdk_logging  # type: ignore[assignment]


class LazyStateCodec:
    """The SDK's AES-GCM request-state codec, built on first use."""

    def __init__(self) -> None:
        self._key = os.urandom(32)  # as RequestStateSecurity.ephemeral() draws it
        self._codec: AESGCMRequestStateCodec | None = None

    @property
    def built(self) -> bool:
        return self._codec is not None

    def _get(self) -> AESGCMRequestStateCodec:
        if self._codec is None:
            self._codec = AESGCMRequestStateCodec([self._key])
        return self._codec

    def seal(self, payload: bytes) -> str:
        return self._get().seal(payload)

    def unseal(self, token: str) -> bytes:
        return self._get().unseal(token)


def request_state_security() -> RequestStateSecurity:
    """What `RequestStateSecurity.ephemeral()` gives (ttl, principal binding, the
    server's name as audience), over `LazyStateCodec`."""
    return RequestStateSecurity(codec=LazyStateCodec())
