"""Who the dashboard page acts as: one-time tickets and browser sessions,
kept in memory and hashed, with an injected clock (see lockd.server.dashboard)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from starlette.requests import cookie_parser

from lockd.core.digest import secret_hash

TICKET_SECONDS = 60.0  # a ticket printed in a terminal is used at once or never
SESSION_SECONDS = 12 * 3600.0  # a working day; then `lockd dashboard` again
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class DashboardAuth:
    """Tickets and browser sessions, in memory and hashed: a broker restart
    ends every dashboard session, which is what a stale tab should see."""

    def __init__(self, port: int, clock: Callable[[], float] = time.time) -> None:
        # Cookies are per host, not per port: name it after the port so two
        # brokers on one machine do not log each other's page out.
        self.cookie = f"lockd_dashboard_{port}"
        self.clock = clock
        self._tickets: dict[str, tuple[str, float]] = {}
        self._sessions: dict[str, tuple[str, float]] = {}

    def issue_ticket(self, peer_id: str) -> tuple[str, float]:
        now = self.clock()
        self._tickets = {h: t for h, t in self._tickets.items() if t[1] > now}
        ticket = secrets.token_urlsafe(32)
        expires = now + TICKET_SECONDS
        self._tickets[secret_hash(ticket)] = (peer_id, expires)
        return ticket, expires

    def redeem(self, ticket: str) -> str | None:
        """The peer a ticket was issued for; the ticket is spent either way."""
        found = self._tickets.pop(secret_hash(ticket), None)
        if found is None or found[1] <= self.clock():
            return None
        return found[0]

    def open_session(self, peer_id: str) -> str:
        now = self.clock()
        self._sessions = {h: s for h, s in self._sessions.items() if s[1] > now}
        secret = secrets.token_urlsafe(32)
        self._sessions[secret_hash(secret)] = (peer_id, now + SESSION_SECONDS)
        return secret

    def session(self, secret: str | None) -> str | None:
        """The peer a cookie acts as, or None when it is missing, unknown or old."""
        if not secret:
            return None
        found = self._sessions.get(secret_hash(secret))
        if found is None or found[1] <= self.clock():
            return None
        return found[0]

    def refusal(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, str, str] | None:
        """The Guard's verdict on a `/dashboard*` request (Host and Origin are
        already checked). The page itself decides on its ticket or cookie."""
        if method == "GET" and path == "/dashboard":
            return None
        if self.session(cookie_parser(headers.get("cookie", "")).get(self.cookie)) is None:
            return (
                401,
                "unauthorized",
                "no dashboard session: open the link that `lockd dashboard` prints",
            )
        if method in WRITE_METHODS:
            if headers.get("x-lockd-dashboard") != "1":
                return 403, "forbidden", "dashboard writes need the header X-Lockd-Dashboard: 1"
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return 415, "invalid", f"content-type {ctype or 'none'!r}: send application/json"
        return None
