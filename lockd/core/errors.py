"""The one domain error type. Edges translate `kind` into their own dialect:
HTTP status (server/), exit code (cli), tool error (mcp_tools), hook line."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    from typing import Any

# kind -> (HTTP status, CLI exit code)
KINDS: dict[str, tuple[int, int]] = {
    "invalid": (422, 2),  # bad input: a pattern, an argument, a body
    "too_large": (413, 2),
    "unauthorized": (401, 3),  # missing or wrong broker token
    "forbidden": (403, 3),  # a peer acting as another, a bad Host/Origin
    "not_found": (404, 4),  # unknown peer, intent, message
    "conflict": (409, 5),  # a claim refused, a name ambiguous, a port taken
    "unavailable": (503, 6),  # the broker cannot be reached / is not ready
    "internal": (500, 1),
}


class LockdError(Exception):
    """Raised by the library for anything a user must hear about.

    `message` names the bad value and the next step; a step that is a command
    goes in `detail["next"]` as a template (`"see {peers} for who is there"`),
    which each edge words for its reader (`lockd.core.render.error_text`).
    """

    def __init__(self, kind: str, message: str, **detail: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail

    @property
    def http_status(self) -> int:
        return KINDS[self.kind][0]

    @property
    def exit_code(self) -> int:
        return KINDS[self.kind][1]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.kind, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any], status: int = 500) -> LockdError:
        kind = body.get("error")
        if kind not in KINDS:
            gateway = status in (502, 504)  # a proxy in front lost the broker
            kind = next((k for k, v in KINDS.items() if v[0] == status), "internal")
            kind = "unavailable" if gateway else kind
        if "message" not in body:  # not our answer: a proxy's, or an empty one
            return cls(
                kind,
                f"HTTP {status} without lockd's explanation (from a proxy or load balancer "
                f"in front of the broker?){': ' + str(body)[:200] if body else ''}",
            )
        detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
        message = str(body["message"])
        if isinstance(detail.get("next"), str):  # the HTTP API's words for the next step:
            from lockd.core.render import error_text  # each edge says it in its own

            said = error_text("", detail, "http")
            message = message.removesuffix(said) if message.endswith(said) else message
        return cls(kind, message, **detail)


def invalid(message: str, **detail: Any) -> LockdError:
    return LockdError("invalid", message, **detail)
