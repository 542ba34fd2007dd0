"""Every broker call, described once: `Api` builds a `Req`, which either
client (`sync` for the CLI and hooks, `aio` for the MCP server) sends."""

from __future__ import annotations

from collections import namedtuple

from lockd.core.announce import Announce

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    from typing import Any
SESSION_HEADER = "X-Lockd-Session"


class Req(namedtuple("Req", "method path body params", defaults=(None, None))):
    """One broker call: method, path, JSON body, query params. A plain
    namedtuple: dataclasses and typing.NamedTuple would pull `inspect` and
    `typing` into every git commit through the hook."""

    __slots__ = ()
    method: str
    path: str
    body: dict[str, Any] | None
    params: dict[str, Any] | None

    def target(self) -> str:
        params = {k: _param(v) for k, v in (self.params or {}).items() if v is not None}
        if not params:
            return self.path
        import urllib.parse

        return self.path + "?" + urllib.parse.urlencode(params)


def _param(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class Api:
    """Every broker call, described once."""

    @staticmethod
    def stream() -> Req:
        return Req("GET", "/v1/stream")

    @staticmethod
    def health() -> Req:
        return Req("GET", "/health")

    @staticmethod
    def status() -> Req:
        return Req("GET", "/v1/status")

    @staticmethod
    def store_status() -> Req:
        return Req("GET", "/v1/status/store")

    @staticmethod
    def shutdown() -> Req:
        return Req("POST", "/v1/shutdown", {})

    @staticmethod
    def register(**fields: Any) -> Req:
        return Req("POST", "/v1/peers", fields)

    @staticmethod
    def heartbeat() -> Req:
        return Req("POST", "/v1/peers/me/heartbeat", {})

    @staticmethod
    def goodbye() -> Req:
        return Req("DELETE", "/v1/peers/me")

    @staticmethod
    def whoami() -> Req:
        return Req("GET", "/v1/peers/me")

    @staticmethod
    def set_summary(summary: str) -> Req:
        return Req("PUT", "/v1/peers/me/summary", {"summary": summary})

    @staticmethod
    def peers(scope: str = "machine", cwd: str | None = None, repo: str | None = None) -> Req:
        return Req("GET", "/v1/peers", params={"scope": scope, "cwd": cwd, "repo": repo})

    @staticmethod
    def send(to: str, message: str) -> Req:
        """With a fresh request key: a retry of this Req is stored once."""
        import os

        key = os.urandom(12).hex()
        return Req("POST", "/v1/messages", {"to": to, "message": message, "request_key": key})

    @staticmethod
    def inbox(mark_read: bool = True) -> Req:
        return Req("GET", "/v1/messages", params={"mark_read": mark_read})

    @staticmethod
    def ack(message_ids: list[str]) -> Req:
        return Req("POST", "/v1/messages/ack", {"message_ids": message_ids})

    @staticmethod
    def mark_read(message_ids: list[str]) -> Req:
        return Req("POST", "/v1/messages/read", {"message_ids": message_ids})

    @staticmethod
    def announce(request: Announce | str, *fields: Any, **named: Any) -> Req:
        """A claim: an `Announce`, or the fields that make one (repo_id first)."""
        if not isinstance(request, Announce):
            request = Announce(request, *fields, **named)
        return Req("POST", "/v1/intents", request.body())

    @staticmethod
    def locks(repo: str | None = None, path: str | None = None, peer: str | None = None) -> Req:
        return Req("GET", "/v1/intents", params={"repo": repo, "path": path, "peer": peer})

    @staticmethod
    def release(
        repo_id: str | None = None,
        intent_ids: list[str] | None = None,
        patterns: list[str] | None = None,
        force: bool = False,
    ) -> Req:
        return Req(
            "POST",
            "/v1/intents/release",
            {
                "repo_id": repo_id,
                "intent_ids": intent_ids,
                "patterns": patterns,
                "force": force,
            },
        )

    @staticmethod
    def repo(repo_id: str, repo_keys: tuple[str, ...] | list[str] = ()) -> Req:
        """Which repo the broker knows this checkout as (by any of its keys)."""
        return Req("POST", "/v1/repos", {"repo_id": repo_id, "repo_keys": list(repo_keys)})

    @staticmethod
    def check(
        repo_id: str,
        paths: list[str],
        viewer: str | None = None,
        repo_keys: tuple[str, ...] | list[str] = (),
    ) -> Req:
        """`viewer` (a peer id or name) decides `mine`; a session credential does too.
        `repo_keys`: the checkout's keys, so the broker knows it by any of them."""
        body = {"repo_id": repo_id, "paths": paths, "viewer": viewer}
        return Req("POST", "/v1/check", {**body, "repo_keys": list(repo_keys)})

    @staticmethod
    def commit_notice(
        repo_id: str,
        intent_ids: list[str],
        paths: list[str],
        hook: str,
        committer: str | None,
        blocked: bool = False,
    ) -> Req:
        """`blocked`: the hook refused the commit (block mode), so nothing landed."""
        return Req(
            "POST",
            "/v1/notices/commit",
            {
                "repo_id": repo_id,
                "intent_ids": intent_ids,
                "paths": paths,
                "hook": hook,
                "committer": committer,
                "blocked": blocked,
            },
        )

    @staticmethod
    def report_activity(edited: list[str] | None = None, scan: dict[str, Any] | None = None) -> Req:
        """What this session changed: edited files, or its checkout's git scan
        (uncommitted, unpushed, total, branch). Paths only."""
        body: dict[str, Any] = {"edited": edited or []}
        if scan is not None:
            body["scan"] = scan
        return Req("POST", "/v1/activity", body)

    @staticmethod
    def activity(repo: str | None = None) -> Req:
        return Req("GET", "/v1/activity", params={"repo": repo})

    @staticmethod
    def put_forecast(repo_id: str, verdicts: list[dict[str, Any]]) -> Req:
        return Req("POST", "/v1/forecast", {"repo_id": repo_id, "verdicts": verdicts})

    @staticmethod
    def events(repo: str | None = None, limit: int = 100) -> Req:
        return Req("GET", "/v1/events", params={"repo": repo, "limit": limit})

    @staticmethod
    def dashboard_ticket() -> Req:
        """A one-time dashboard link for the session's own peer."""
        return Req("POST", "/v1/dashboard/ticket", {})

    @staticmethod
    def create_token(name: str) -> Req:
        """A team server user's token; the answer is the only place it appears."""
        return Req("POST", "/v1/tokens", {"name": name})

    @staticmethod
    def revoke_token(name: str) -> Req:
        import urllib.parse

        return Req("DELETE", "/v1/tokens/" + urllib.parse.quote(name, safe=""))

    @staticmethod
    def tokens() -> Req:
        return Req("GET", "/v1/tokens")
