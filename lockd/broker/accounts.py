"""Who is calling: the broker machine's own token, or a team server's
per-user token (`lockd token create NAME`).

Tokens are stored as sha256 only, in the `users` table. The broker checks
every request against a map hash → user held in memory (no database trip
on the request path), loaded at start and kept current by create/revoke
here and by `reload()` when another broker on the same database changed it.
A revoked token stays in the map, so its holder hears that it was revoked.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from lockd.core.digest import secret_hash
from lockd.core.errors import LockdError, invalid
from lockd.core.models import LOCAL_USER
from lockd.store.engine import Store

log = logging.getLogger("lockd.broker.accounts")
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def check_name(name: str) -> str:
    if not USER_RE.match(name):
        raise invalid(
            f"user name {name!r} is not usable: 1-64 letters, digits or ._@- ,"
            " starting with a letter or digit"
        )
    if name.lower() == LOCAL_USER:
        raise invalid(
            f"user name {name!r} is reserved for the broker machine's own token; choose another"
        )
    return name


@dataclass(frozen=True)
class Caller:
    """A request's verdict: the user, or why there is none."""

    user: str | None
    revoked: bool = False


class Accounts:
    def __init__(self, machine_token: str) -> None:
        self._machine = machine_token.encode()
        self.store: Store | None = None
        self._by_hash: dict[str, tuple[str, bool]] = {}  # token hash -> (user, revoked)
        self._users: dict[str, dict[str, Any]] = {}
        self._changes = 0  # bumped by each local change, so a reload never undoes one

    async def open(self, store: Store) -> None:
        self.store = store
        await self.reload()

    async def reload(self) -> None:
        """Re-read the users table (another broker created or revoked a token).
        One read; cheap enough to call on every change notice."""
        if self.store is None:
            return
        while True:
            seen = self._changes
            rows = await self.store.read(lambda tx: tx.load_users())
            if seen == self._changes:
                break
        self._install(rows)

    def _install(self, rows: list[dict[str, Any]]) -> None:
        self._users = {r["name"]: r for r in rows}
        self._by_hash = {r["token_hash"]: (r["name"], r["revoked_at"] is not None) for r in rows}

    def identify(self, token: bytes) -> Caller:
        """Who sends this bearer token. Constant-time against the machine token;
        a user token is looked up by its hash, which reveals nothing of it."""
        if hmac.compare_digest(token, self._machine):
            return Caller(LOCAL_USER)
        found = self._by_hash.get(secret_hash(token))
        if found is None:
            return Caller(None)
        name, revoked = found
        return Caller(name, revoked=True) if revoked else Caller(name)

    def active(self, user: str) -> bool:
        """False for a user whose token was revoked since (a dashboard cookie
        outlives the request that made it)."""
        if user == LOCAL_USER:
            return True
        row = self._users.get(user)
        return row is not None and row["revoked_at"] is None

    async def create(self, name: str, by: str) -> dict[str, Any]:
        """A new token for `name`, returned once: only its hash is kept."""
        check_name(name)
        store = self._open_store()
        token = secrets.token_urlsafe(32)
        hashed, now = secret_hash(token), store.clock()
        if not await store.write(lambda tx: tx.insert_user(name, hashed, now, by)):
            raise LockdError(
                "conflict",
                f"user {name!r} already has a token; to replace it: "
                f"`lockd token revoke {name}` then `lockd token create {name}`",
            )
        self._changes += 1
        old = self._users.get(name)
        if old is not None:
            self._by_hash.pop(old["token_hash"], None)
        self._users[name] = {
            "name": name,
            "token_hash": hashed,
            "created_at": now,
            "created_by": by,
            "revoked_at": None,
        }
        self._by_hash[hashed] = (name, False)
        log.info("token created for user %s by %s", name, by)
        return {"name": name, "token": token, "created_at": now, "created_by": by}

    async def revoke(self, name: str, by: str) -> dict[str, Any]:
        """Refuse the user's token from now on. Revoking twice is not an error."""
        store = self._open_store()
        now = store.clock()
        revoked = await store.write(lambda tx: tx.revoke_user(name, now))
        if not revoked:
            await self.reload()
            row = self._users.get(name)
            if row is None:
                raise LockdError(
                    "not_found", f"no user {name!r} has a token: see `lockd token list`"
                )
            return {"name": name, "revoked_at": row["revoked_at"], "already": True}
        self._changes += 1
        row = self._users.get(name)
        if row is not None:
            row["revoked_at"] = now
            self._by_hash[row["token_hash"]] = (name, True)
        else:  # created through another broker, not yet reloaded here
            await self.reload()
        log.info("token of user %s revoked by %s", name, by)
        return {"name": name, "revoked_at": now, "already": False}

    async def listing(self) -> list[dict[str, Any]]:
        """Every user, never a token nor its hash; read afresh, as other brokers
        on the database may have changed them."""
        await self.reload()
        return [
            {k: row[k] for k in ("name", "created_at", "created_by", "revoked_at")}
            for row in sorted(self._users.values(), key=lambda r: r["name"])
        ]

    def _open_store(self) -> Store:
        if self.store is None:
            raise LockdError("unavailable", "the broker is starting: try again")
        return self.store
