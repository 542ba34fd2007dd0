"""What both clients share around the codec: their base (address, token,
credential, timeout, a request's bytes), decoding an answer into data or a
LockdError, and saying why a broker is unreachable.
"""

from __future__ import annotations

import json
import sys

from lockd.client import codec
from lockd.client.api import SESSION_HEADER, Req
from lockd.core.errors import LockdError
from lockd.local import config

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    import ssl
    from typing import Any


def headers(token: str | None, credential: str | None, has_body: bool) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if credential:
        headers[SESSION_HEADER] = credential
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


def decode(status: int, raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        if status < 400:  # never hand a caller a success it cannot read
            raise LockdError(
                "unavailable", f"the broker's answer (HTTP {status}) is not JSON: {raw[:80]!r}"
            ) from None
        body = {"message": raw[:200].decode(errors="replace")}
    if status >= 400:
        if not isinstance(body, dict):
            body = {"message": str(body)}
        raise LockdError.from_json(body, status)
    return body if isinstance(body, dict) else {"value": body}


def unreachable(url: str, exc: BaseException) -> LockdError:
    ssl = sys.modules.get("ssl")  # loaded only for https:// URLs
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return LockdError(
            "unavailable",
            f"the TLS certificate of {url} is not trusted ({exc.verify_message}): set LOCKD_CA "
            "to the CA bundle or self-signed certificate it was issued with",
        )
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return LockdError(
            "unavailable",
            f"TLS with {url} failed ({exc}): check that LOCKD_URL's scheme (https://) and "
            "port match how the broker serves",
        )
    if config.remote_url() is not None:
        return LockdError(
            "unavailable", f"no lockd broker answers at {url} ({exc}); check LOCKD_URL"
        )
    if not isinstance(exc, ConnectionRefusedError):  # something holds the port: who?
        from lockd.local.processes import port_holder  # psutil: only on this path

        holder = port_holder(config.port())
        if holder is not None:
            return LockdError(
                "unavailable",
                f"port {config.port()} is taken by {holder}, which does not answer as this "
                f"LOCKD_HOME's broker ({exc}): stop it, or set LOCKD_PORT to another port",
            )
    return LockdError(
        "unavailable",
        f"no lockd broker running at {url} ({exc}); start one with `lockd serve` "
        "(agent sessions, `lockd claim` and `lockd send` start one themselves)",
    )


def tls_context() -> ssl.SSLContext:
    import ssl

    return ssl.create_default_context(cafile=config.ca_file())


def endpoint(url: str | None) -> tuple[str, bool, str, int]:
    """(url, https, host, port); the local broker's address without URL parsing."""
    if url is None and config.remote_url() is None:
        return config.broker_url(), False, config.HOST, config.port()
    import urllib.parse

    full = url or config.broker_url()
    parts = urllib.parse.urlsplit(full)
    https = parts.scheme == "https"
    return full, https, parts.hostname or config.HOST, parts.port or (443 if https else 80)


class BaseClient:
    """What both clients are: a broker's address, the token and session
    credential they send it, a timeout, and a request's bytes. `sync.Client`
    and `aio.AsyncClient` each add the socket those bytes go out on."""

    TIMEOUT: float  # seconds, each client its own

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        credential: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url, self._https, self._host, self._port = endpoint(url)
        self.token = token if token is not None else config.read_token()
        self.credential = credential
        self.timeout = self.TIMEOUT if timeout is None else timeout

    def _request_bytes(self, req: Req, accept: str | None = None) -> bytes:
        """The request with its JSON body, the token and the credential."""
        data = json.dumps(req.body).encode() if req.body is not None else None
        head = headers(self.token, self.credential, data is not None)
        if accept is not None:
            head["Accept"] = accept
        return codec.request_bytes(req.method, req.target(), data, self._host, self._port, head)


def network_errors() -> tuple[type[BaseException], ...]:
    import asyncio  # not at module level: the git hook imports this module

    return (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)
