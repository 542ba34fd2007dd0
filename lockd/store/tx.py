"""Statements, as methods of one transaction, run on the store's own thread: a
job is a function of a `Tx`, and the store runs a whole batch of jobs in one
transaction. Nothing outside lockd.store sees SQL.

One Tx serves both engines (sqlite3 and psycopg 3, both DB-API, both
synchronous), so every job function in the registry and claims runs unchanged
on either. The SQL is written once in the common subset (ON CONFLICT upserts,
INSERT ... RETURNING id, which SQLite has since 3.35); the `Dialect` only
rewrites `?` placeholders to psycopg's `%s`. Rows are read by column name
only, so sqlite3.Row and psycopg's dict rows are interchangeable."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lockd.core import feed
from lockd.core.models import Intent, Message, Peer, intent_key, message_key

IN_CHUNK = 500  # values per `IN (…)`: far under SQLite's and PostgreSQL's variable limits
MSG_SELECT = (
    "SELECT m.*, d.delivered_at FROM deliveries d JOIN messages m ON m.id = d.message_id"
    " WHERE d.recipient_id = ?"
)


Row = Mapping[str, Any]  # sqlite3.Row or a psycopg dict row: read by name only
# Seconds since the epoch. Every time lockd records comes from its store's one
# clock (`GroupCommitStore.clock`): the transactions' and the services' alike.
Clock = Callable[[], float]


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines in the statements Tx sends."""

    name: str
    placeholder: str  # what `?` becomes

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


SQLITE = Dialect("sqlite", "?")
POSTGRES = Dialect("postgres", "%s")


def _peer(row: Row) -> Peer:
    fields = {k: row[k] for k in row.keys() if k != "credential_hash"}  # noqa: SIM118 - iterating a Row gives values
    fields["alive"] = bool(fields["alive"])
    fields["user"] = fields.pop("user_name")
    return Peer(**fields)


# The intents columns that hold an Intent field as it is, under its own name.
INTENT_COLUMNS = ("peer_id", "repo_id", "pattern", "mode", "reason", "since", "expires_at")


def _intent(row: Row) -> Intent:
    return Intent(
        intent_id=intent_key(row["id"]),
        notify_when_free=bool(row["notify_when_free"]),
        **{column: row[column] for column in INTENT_COLUMNS},
    )


def _message(row: Row) -> Message:
    return Message(
        message_id=message_key(row["id"]),
        from_id=row["sender_id"],
        from_name=row["sender_name"],
        text=row["text"],
        sent_at=row["sent_at"],
        to=row["to_spec"],
        kind=row["kind"],
        pushed=row["delivered_at"] is not None,
        meta=_tolerant_json(row["meta"]),
    )


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(m: re.Match[str]) -> str:
    code = ord(m.group())
    # U+DC80-U+DCFF is a byte that was not UTF-8 (Python's surrogateescape):
    # written \xNN, as lockd/gitcmd.py writes such bytes in file names.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def printable(value: Any) -> Any:
    """`value` (JSON data) with every string safe to send as UTF-8: a lone
    surrogate, which JSON can carry as an escape but no UTF-8 answer can,
    becomes the text of its escape."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub(_escape_surrogate, value)
    if isinstance(value, list):
        return [printable(v) for v in value]
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    return value


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _tolerant_json(raw: Any) -> Any:
    """A stored JSON column as data, whatever an older broker or a bad client
    put there: a record that cannot be read whole is shown, not fatal."""
    try:
        return printable(json.loads(raw))
    except (TypeError, ValueError):
        return {"unreadable": printable(str(raw))[:500]}


def _event(r: Row) -> dict[str, Any]:
    detail = _tolerant_json(r["detail"])
    return {
        "event_id": r["id"],
        "at": r["at"],
        "event": printable(r["event"]),
        "intent_id": intent_key(r["intent_id"]) if r["intent_id"] is not None else None,
        "peer_id": printable(r["peer_id"]),
        "actor_id": printable(r["actor_id"]),
        "repo": printable(r["repo_id"]),
        "user": printable(r["actor_user"]),
        "detail": detail if isinstance(detail, dict) else {"value": detail},
    }


NOTIFY_CHANNEL = "lockd"


class Tx:
    def __init__(
        self,
        conn: Any,
        dialect: Dialect = SQLITE,
        origin: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.conn = conn
        self.dialect = dialect
        self.origin = origin  # this broker's replica id on a shared database, else None
        self.clock = clock
        # What this job changed, as announced to the other brokers (shared only).
        self.changes: list[feed.Change] = []
        self.ignorecase: dict[str, bool] = {}  # per repo, set by a claim job that knows it

    def changed(self, change: feed.Change) -> None:
        """Tell the other brokers on this database what this transaction changed
        (the feed in lockd/store/postgres.py): a NOTIFY that PostgreSQL delivers at COMMIT, never
        for a rollback. A no-op for a store no other broker shares (SQLite)."""
        if self.origin is None:
            return
        self.changes.append(change)
        self._x("SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, feed.encode(self.origin, change)))

    def claim_bumps(self) -> list[tuple[str, int]]:
        """(repo, claim version after it) for each claim change of this job, in order."""
        return [
            (c.repo_id, c.version)
            for c in self.changes
            if isinstance(c, feed.ClaimPut | feed.ClaimDropped) and c.version is not None
        ]

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Execute one statement; return its cursor (rowcount, fetch*)."""
        return self.conn.execute(self.dialect.sql(sql), params)

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self.conn.cursor().executemany(self.dialect.sql(sql), rows)

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self._x(sql, params).fetchall())

    @staticmethod
    def _in(values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """`IN (…)` placeholders and their values, IN_CHUNK at a time (none for
        none): a list of ids can be long, a statement's variables are not."""
        for at in range(0, len(values), IN_CHUNK):
            part = list(values[at : at + IN_CHUNK])
            yield ",".join("?" * len(part)), part

    # ---- peers -------------------------------------------------------------
    def load_peers(self, alive: bool | None = None) -> list[tuple[Peer, str]]:
        where = "" if alive is None else f" WHERE alive={int(alive)}"
        rows = self._q(f"SELECT * FROM peers{where} ORDER BY created_at, peer_id")
        return [(_peer(r), r["credential_hash"]) for r in rows]

    def peer_by_ref(self, ref: str) -> tuple[Peer, str] | None:
        """By id, else by name: a live one first, else the most recently seen."""
        found = self._one_peer("peer_id", ref)
        if found is None:
            rows = self._q(
                "SELECT * FROM peers WHERE name=? ORDER BY alive DESC, last_seen DESC LIMIT 1",
                (ref,),
            )
            found = (_peer(rows[0]), rows[0]["credential_hash"]) if rows else None
        return found

    def names_held(self, wanted: str, peer_id: str, held_since: float) -> set[str]:
        """Names like `wanted` (itself, `wanted-N`) held by other peers: live,
        or gone since `held_since` (see PeerDirectory._unique_name)."""
        rows = self._q(
            "SELECT name FROM peers WHERE (name=? OR substr(name, 1, ?)=?) AND peer_id<>?"
            " AND (alive=1 OR last_seen>?)",
            (wanted, len(wanted) + 1, wanted + "-", peer_id, held_since),
        )
        return {r["name"] for r in rows}

    def peer_names(self, peer_ids: Sequence[str]) -> dict[str, str]:
        return {
            r["peer_id"]: r["name"]
            for marks, ids in self._in(peer_ids)
            for r in self._q(f"SELECT peer_id, name FROM peers WHERE peer_id IN ({marks})", ids)
        }

    def load_peer(self, peer_id: str) -> tuple[Peer, str] | None:
        return self._one_peer("peer_id", peer_id)

    def peer_by_credential(self, credential_hash: str) -> tuple[Peer, str] | None:
        return self._one_peer("credential_hash", credential_hash)

    def _one_peer(self, column: str, value: str) -> tuple[Peer, str] | None:
        rows = self._q(f"SELECT * FROM peers WHERE {column}=?", (value,))
        return (_peer(rows[0]), rows[0]["credential_hash"]) if rows else None

    def last_seen(self, peer_ids: Sequence[str]) -> dict[str, float]:
        sql = "SELECT peer_id, last_seen FROM peers WHERE peer_id IN ({})"
        return {
            r["peer_id"]: float(r["last_seen"])
            for marks, ids in self._in(peer_ids)
            for r in self._q(sql.format(marks), ids)
        }

    def mark_gone(self, peer_id: str, seen_before: float | None) -> bool:
        """alive -> dead, once: False if it was dead already or (seen_before) if
        it was seen since, through this broker or any other on the database."""
        stale = " AND last_seen < ?" if seen_before is not None else ""
        params = (peer_id,) if seen_before is None else (peer_id, seen_before)
        cur = self._x(f"UPDATE peers SET alive=0 WHERE peer_id=? AND alive=1{stale}", params)
        if cur.rowcount:
            self.changed(feed.PeerChanged(peer_id))
        return bool(cur.rowcount)

    def save_peer(self, peer: Peer, credential_hash: str) -> None:
        self._x(
            """INSERT INTO peers (peer_id, credential_hash, name, kind, client, host, cwd,
                   repo_id, repo_root, summary, pid, pid_start, agent_pid, agent_start,
                   created_at, last_seen, alive, user_name)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(peer_id) DO UPDATE SET name=excluded.name, kind=excluded.kind,
                   client=excluded.client, host=excluded.host, cwd=excluded.cwd,
                   repo_id=excluded.repo_id, repo_root=excluded.repo_root,
                   summary=excluded.summary, pid=excluded.pid, pid_start=excluded.pid_start,
                   agent_pid=excluded.agent_pid, agent_start=excluded.agent_start,
                   last_seen=excluded.last_seen, alive=excluded.alive,
                   credential_hash=excluded.credential_hash, user_name=excluded.user_name""",
            (
                peer.peer_id,
                credential_hash,
                peer.name,
                peer.kind,
                peer.client,
                peer.host,
                peer.cwd,
                peer.repo_id,
                peer.repo_root,
                peer.summary,
                peer.pid,
                peer.pid_start,
                peer.agent_pid,
                peer.agent_start,
                peer.created_at,
                peer.last_seen,
                int(peer.alive),
                peer.user,
            ),
        )
        self.changed(feed.PeerChanged(peer.peer_id))

    def set_peer(self, peer_id: str, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        self._x(f"UPDATE peers SET {cols} WHERE peer_id=?", [*fields.values(), peer_id])
        self.changed(feed.PeerChanged(peer_id))

    def touch_peers(self, stamps: dict[str, float]) -> None:
        self._many(
            "UPDATE peers SET last_seen=? WHERE peer_id=?", [(t, p) for p, t in stamps.items()]
        )

    # ---- messages ----------------------------------------------------------
    def insert_message(
        self,
        sender_id: str,
        sender_name: str,
        to_spec: str,
        text: str,
        recipients: list[str],
        kind: str,
        meta: dict[str, str],
        request_key: str | None = None,
    ) -> Message:
        now = self.clock()
        cur = self._x(
            "INSERT INTO messages (sender_id, sender_name, to_spec, kind, text, meta, sent_at,"
            " request_key) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
            (sender_id, sender_name, to_spec, kind, text, json.dumps(meta), now, request_key),
        )
        mid = int(cur.fetchall()[0]["id"])
        self._many(
            "INSERT INTO deliveries (recipient_id, message_id) VALUES (?, ?)",
            [(r, mid) for r in recipients],
        )
        message = Message(
            message_key(mid), sender_id, sender_name, text, now, to_spec, kind, False, meta
        )
        self.changed(feed.MessageSent(mid, message, tuple(recipients)))
        return message

    def sent_before(self, sender_id: str, request_key: str) -> tuple[Message, list[str]] | None:
        """The message this sender already sent with this key (a retried send)."""
        rows = self._q(
            "SELECT id FROM messages WHERE sender_id=? AND request_key=?", (sender_id, request_key)
        )
        return self.message(int(rows[0]["id"])) if rows else None

    def message(self, message_id: int) -> tuple[Message, list[str]] | None:
        """One message and its recipients: what a NOTIFY too big to carry them names."""
        rows = self._q(
            "SELECT m.*, NULL AS delivered_at FROM messages m WHERE m.id=?", (message_id,)
        )
        if not rows:
            return None
        to = self._q("SELECT recipient_id FROM deliveries WHERE message_id=?", (message_id,))
        return _message(rows[0]), [r["recipient_id"] for r in to]

    def undelivered(self, recipient: str) -> list[Message]:
        rows = self._q(
            MSG_SELECT + " AND d.delivered_at IS NULL AND d.read_at IS NULL ORDER BY m.id",
            (recipient,),
        )
        return [_message(r) for r in rows]

    def unread(self, recipient: str, limit: int = 500) -> list[Message]:
        rows = self._q(
            MSG_SELECT + " AND d.read_at IS NULL ORDER BY m.id LIMIT ?", (recipient, limit)
        )
        return [_message(r) for r in rows]

    def unread_count(self, recipient: str) -> int:
        rows = self._q(
            "SELECT count(*) AS n FROM deliveries WHERE recipient_id=? AND read_at IS NULL",
            (recipient,),
        )
        return int(rows[0]["n"])

    def mark(self, recipient: str, ids: list[int], column: str) -> int:
        """Set delivered_at or read_at on these of the recipient's messages."""
        if column not in ("delivered_at", "read_at") or not ids:
            return 0
        marks = ",".join("?" * len(ids))
        cur = self._x(
            f"UPDATE deliveries SET {column}=? WHERE recipient_id=? AND {column} IS NULL"
            f" AND message_id IN ({marks})",
            [self.clock(), recipient, *ids],
        )
        return cur.rowcount

    def purge_messages(self, before: float) -> int:
        """Retention: drop deliveries read, or pushed and acknowledged, before
        `before`, then the messages no delivery refers to."""
        cur = self._x("DELETE FROM deliveries WHERE coalesce(read_at, delivered_at) < ?", (before,))
        self._x(
            "DELETE FROM messages WHERE sent_at < ? AND id NOT IN"
            " (SELECT message_id FROM deliveries)",
            (before,),
        )
        return cur.rowcount

    # ---- retention -----------------------------------------------------------
    def compact(
        self, records_before: float, peers_before: float, unseen_before: float
    ) -> dict[str, Any]:
        """Retention: released intents and the events of intents no longer
        live, recorded before `records_before`; gone peers last seen before
        `peers_before` with no live claim and nothing it has not seen (neither
        read nor pushed to it), or gone since before `unseen_before` whatever
        waits for it, with their read
        deliveries and watches. Returns counts, and the purged peers' ids."""
        intents = self._x(
            "DELETE FROM intents WHERE released_at IS NOT NULL AND released_at < ?",
            (records_before,),
        ).rowcount
        events = self._x(
            "DELETE FROM intent_events WHERE at < ? AND (intent_id IS NULL OR intent_id NOT IN"
            " (SELECT id FROM intents WHERE released_at IS NULL))",
            (records_before,),
        ).rowcount
        gone = self._q(
            "DELETE FROM peers WHERE alive=0 AND last_seen < ? AND (last_seen < ? OR peer_id"
            " NOT IN (SELECT recipient_id FROM deliveries WHERE read_at IS NULL AND"
            " delivered_at IS NULL)) AND peer_id NOT IN"
            " (SELECT peer_id FROM intents WHERE released_at IS NULL) RETURNING peer_id",
            (peers_before, unseen_before),
        )
        purged = sorted(r["peer_id"] for r in gone)
        for marks, ids in self._in(purged):
            self._x(f"DELETE FROM deliveries WHERE recipient_id IN ({marks})", ids)
            self._x(f"DELETE FROM watches WHERE peer_id IN ({marks})", ids)
        for peer_id in purged:
            self.changed(feed.PeerChanged(peer_id))
        return {"intents": intents, "events": events, "peers": purged}

    def row_counts(self) -> dict[str, int]:
        """Rows by kind, for `lockd status`."""
        queries = {
            "peers_live": "SELECT count(*) AS n FROM peers WHERE alive=1",
            "peers_gone": "SELECT count(*) AS n FROM peers WHERE alive=0",
            "intents_live": "SELECT count(*) AS n FROM intents WHERE released_at IS NULL",
            "intents_released": "SELECT count(*) AS n FROM intents WHERE released_at IS NOT NULL",
            "events": "SELECT count(*) AS n FROM intent_events",
            "messages": "SELECT count(*) AS n FROM messages",
            "deliveries_unread": "SELECT count(*) AS n FROM deliveries WHERE read_at IS NULL",
            "deliveries_read": "SELECT count(*) AS n FROM deliveries WHERE read_at IS NOT NULL",
            "watches": "SELECT count(*) AS n FROM watches",
        }
        return {kind: int(self._q(sql)[0]["n"]) for kind, sql in queries.items()}

    # ---- intents -----------------------------------------------------------
    def live_intents(self, repo_id: str | None = None) -> list[Intent]:
        where, params = (" AND repo_id=?", (repo_id,)) if repo_id is not None else ("", ())
        rows = self._q(
            f"SELECT * FROM intents WHERE released_at IS NULL{where} ORDER BY id", params
        )
        return [_intent(r) for r in rows]

    def insert_intent(self, intent: Intent) -> Intent:
        cur = self._x(
            "INSERT INTO intents (peer_id, repo_id, pattern, mode, reason, since, expires_at,"
            " notify_when_free) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
            (
                intent.peer_id,
                intent.repo_id,
                intent.pattern,
                intent.mode,
                intent.reason,
                intent.since,
                intent.expires_at,
                int(intent.notify_when_free),
            ),
        )
        intent.intent_id = intent_key(int(cur.fetchall()[0]["id"]))
        self._claims_changed(intent.repo_id, intent.intent_id, intent)
        return intent

    def _claims_changed(self, repo_id: str, intent_id: str, put: Intent | None = None) -> None:
        """Bump the repo's claim version and announce the change with it: an
        intent put (granted, updated), else `intent_id` dropped (released)."""
        if self.origin is None:
            return
        rows = self._q(
            "INSERT INTO claim_versions (repo_id, version, ignorecase) VALUES (?, 1, ?)"
            " ON CONFLICT (repo_id) DO UPDATE SET version = claim_versions.version + 1"
            " RETURNING version, ignorecase",
            (repo_id, int(self.ignorecase.get(repo_id, False))),
        )
        version, ignorecase = int(rows[0]["version"]), bool(rows[0]["ignorecase"])
        if put is None:
            self.changed(feed.ClaimDropped(repo_id, version, ignorecase, intent_id))
        else:
            self.changed(feed.ClaimPut(repo_id, version, ignorecase, intent_id, put))

    def claim_state(self, repo_id: str) -> tuple[int, bool | None]:
        """(claim version, case rule) of a repo; the rule is None before its first claim."""
        return self.claim_versions(repo_id).get(repo_id, (0, None))

    def claim_versions(self, repo_id: str | None = None) -> dict[str, tuple[int, bool]]:
        """repo -> (claim version, ignorecase), of one repo or all."""
        where, params = (" WHERE repo_id=?", (repo_id,)) if repo_id is not None else ("", ())
        rows = self._q(f"SELECT repo_id, version, ignorecase FROM claim_versions{where}", params)
        return {r["repo_id"]: (int(r["version"]), bool(r["ignorecase"])) for r in rows}

    def intent(self, intent_id: int) -> Intent | None:
        """One live intent (None: released since): what a notice too big names."""
        rows = self._q("SELECT * FROM intents WHERE id=? AND released_at IS NULL", (intent_id,))
        return _intent(rows[0]) if rows else None

    def live_intents_of(self, peer_id: str, repo_id: str | None = None) -> list[Intent]:
        where, params = (" AND repo_id=?", (peer_id, repo_id)) if repo_id else ("", (peer_id,))
        rows = self._q(
            f"SELECT * FROM intents WHERE released_at IS NULL AND peer_id=?{where} ORDER BY id",
            params,
        )
        return [_intent(r) for r in rows]

    def update_intent(self, intent_id: int, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        rows = self._q(
            f"UPDATE intents SET {cols} WHERE id=? RETURNING *", [*fields.values(), intent_id]
        )
        for row in rows:
            intent = _intent(row)
            self._claims_changed(intent.repo_id, intent.intent_id, intent)

    def release_intent(
        self, intent_id: int, by: str | None, cause: str, expired_at: float | None = None
    ) -> bool:
        """False if it was released already (by another broker on the database),
        or, with `expired_at`, if it does not expire by then (renewed meanwhile)."""
        due = " AND expires_at IS NOT NULL AND expires_at <= ?" if expired_at is not None else ""
        params = (self.clock(), by, cause, intent_id, *([] if expired_at is None else [expired_at]))
        rows = self._q(
            "UPDATE intents SET released_at=?, released_by=?, release_cause=?"
            f" WHERE id=? AND released_at IS NULL{due} RETURNING repo_id",
            params,
        )
        for row in rows:
            self._claims_changed(row["repo_id"], intent_key(intent_id))
        return bool(rows)

    def record_event(
        self,
        event: str,
        *,
        intent_id: int | None = None,
        peer_id: str | None = None,
        actor_id: str | None = None,
        repo_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        # The acting peer's user, looked up here so that every caller records it.
        self._x(
            "INSERT INTO intent_events (at, event, intent_id, peer_id, actor_id, repo_id, detail,"
            " actor_user) VALUES (?,?,?,?,?,?,?,"
            " (SELECT user_name FROM peers WHERE peer_id=?))",
            (
                self.clock(),
                event,
                intent_id,
                peer_id,
                actor_id,
                repo_id,
                json.dumps(detail or {}),
                actor_id,
            ),
        )

    def events(self, limit: int = 100, repo_id: str | None = None) -> list[dict[str, Any]]:
        """Newest first. Tolerant: a row an older broker or another tool wrote
        badly (text that is not UTF-8, detail that is not JSON) is listed as
        well as it can be read, never failing the listing."""
        where, params = ("WHERE repo_id=?", [repo_id]) if repo_id else ("", [])
        # sqlite3 refuses to read a TEXT value that is not UTF-8; PostgreSQL never
        # stores one. Only this read pays for decoding leniently.
        strict = getattr(self.conn, "text_factory", None)
        if strict is not None:
            self.conn.text_factory = _lenient_text
        try:
            rows = self._q(
                f"SELECT * FROM intent_events {where} ORDER BY id DESC LIMIT ?", [*params, limit]
            )
        finally:
            if strict is not None:
                self.conn.text_factory = strict
        return [_event(r) for r in rows]

    def peer_events(self, peer_id: str, event: str, since: float) -> list[dict[str, Any]]:
        """One peer's events of one kind recorded after `since`, oldest first
        (read rarely: when a peer comes back from being declared gone)."""
        rows = self._q(
            "SELECT * FROM intent_events WHERE peer_id=? AND event=? AND at > ? ORDER BY id",
            (peer_id, event, since),
        )
        return [_event(r) for r in rows]

    # ---- repo aliases (lockd/core/repos.py) -----------------------------------
    def repo_aliases(self, keys: list[str] | None = None) -> dict[str, str]:
        """alias -> repo id: of these keys, or all (at start)."""
        if keys is None:
            rows = self._q("SELECT alias, repo_id FROM repo_aliases")
        elif not keys:
            return {}
        else:
            marks = ",".join("?" * len(keys))
            rows = self._q(
                f"SELECT alias, repo_id FROM repo_aliases WHERE alias IN ({marks})", keys
            )
        return {r["alias"]: r["repo_id"] for r in rows}

    def add_repo_aliases(self, aliases: dict[str, str]) -> None:
        """Keep each new alias; one another broker kept first stays as it is."""
        self._many(
            "INSERT INTO repo_aliases (alias, repo_id, created_at) VALUES (?,?,?)"
            " ON CONFLICT (alias) DO NOTHING",
            [(alias, repo, self.clock()) for alias, repo in aliases.items()],
        )

    # ---- watches (notify_when_free) ----------------------------------------
    def add_watch(self, peer_id: str, repo_id: str, patterns: list[str], mode: str) -> None:
        self._x(
            "INSERT INTO watches (peer_id, repo_id, patterns, mode, created_at) VALUES (?,?,?,?,?)",
            (peer_id, repo_id, json.dumps(patterns), mode, self.clock()),
        )

    def watches(self, repo_id: str) -> list[dict[str, Any]]:
        rows = self._q("SELECT * FROM watches WHERE repo_id=? ORDER BY id", (repo_id,))
        return [
            {
                "id": r["id"],
                "peer_id": r["peer_id"],
                "patterns": json.loads(r["patterns"]),
                "mode": r["mode"],
            }
            for r in rows
        ]

    def delete_watch(self, watch_id: int) -> bool:
        """False if it was gone already: another broker woke this watcher."""
        return bool(self._x("DELETE FROM watches WHERE id=?", (watch_id,)).rowcount)

    # ---- users (a team server's tokens, hashed) ------------------------------
    def load_users(self) -> list[dict[str, Any]]:
        rows = self._q(
            "SELECT name, token_hash, created_at, created_by, revoked_at FROM users ORDER BY name"
        )
        return [dict(r) for r in rows]

    def insert_user(self, name: str, token_hash: str, created_at: float, by: str) -> bool:
        """A new user, or a new token for a revoked one; False when `name` holds
        a live token (revoke it first: one token per user)."""
        cur = self._x(
            "INSERT INTO users (name, token_hash, created_at, created_by) VALUES (?,?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET token_hash=excluded.token_hash,"
            " created_at=excluded.created_at, created_by=excluded.created_by, revoked_at=NULL"
            " WHERE users.revoked_at IS NOT NULL",
            (name, token_hash, created_at, by),
        )
        if cur.rowcount:
            self.changed(feed.TokensChanged(name))
        return bool(cur.rowcount)

    def revoke_user(self, name: str, at: float) -> bool:
        cur = self._x(
            "UPDATE users SET revoked_at=? WHERE name=? AND revoked_at IS NULL", (at, name)
        )
        if cur.rowcount:
            self.changed(feed.TokensChanged(name))
        return bool(cur.rowcount)
