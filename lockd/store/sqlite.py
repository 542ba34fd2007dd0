"""The SQLite store: schema, migrations, transactions. Nothing else knows SQL.

One connection, one writer: every statement runs under one asyncio lock, so no
request can ever meet "database is locked" from this process, and a
`transaction()` groups a multi-row change atomically. WAL with
`synchronous=FULL`: a commit that returned is on disk (fsync), so an
acknowledged write survives `kill -9` and power loss alike.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from lockd.errors import LockdError
from lockd.models import Intent, Message, Peer, intent_key, message_key

# Named, ordered migrations; PRAGMA user_version records how many have run.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE peers (
            peer_id TEXT PRIMARY KEY,
            credential_hash TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            client TEXT NOT NULL,
            host TEXT NOT NULL,
            cwd TEXT NOT NULL,
            repo_id TEXT NOT NULL,
            repo_root TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            pid INTEGER, pid_start REAL, agent_pid INTEGER, agent_start REAL,
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            alive INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sender_id TEXT NOT NULL,
            sender_name TEXT NOT NULL,
            to_spec TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'message',
            text TEXT NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            sent_at REAL NOT NULL
        );
        CREATE TABLE deliveries (
            recipient_id TEXT NOT NULL,
            message_id INTEGER NOT NULL REFERENCES messages(id),
            delivered_at REAL,
            read_at REAL,
            PRIMARY KEY (recipient_id, message_id)
        ) WITHOUT ROWID;
        CREATE INDEX deliveries_unread ON deliveries(recipient_id, read_at);
        CREATE TABLE intents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            peer_id TEXT NOT NULL,
            repo_id TEXT NOT NULL,
            pattern TEXT NOT NULL,
            mode TEXT NOT NULL,
            reason TEXT NOT NULL,
            since REAL NOT NULL,
            expires_at REAL,
            notify_when_free INTEGER NOT NULL DEFAULT 0,
            released_at REAL,
            released_by TEXT,
            release_cause TEXT
        );
        CREATE INDEX intents_live ON intents(repo_id) WHERE released_at IS NULL;
        CREATE TABLE intent_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            event TEXT NOT NULL,
            intent_id INTEGER,
            peer_id TEXT,
            actor_id TEXT,
            repo_id TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE watches (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            peer_id TEXT NOT NULL,
            repo_id TEXT NOT NULL,
            patterns TEXT NOT NULL,
            mode TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    ),
]


def _peer(row: aiosqlite.Row) -> Peer:
    return Peer(
        peer_id=row["peer_id"],
        name=row["name"],
        kind=row["kind"],
        client=row["client"],
        host=row["host"],
        cwd=row["cwd"],
        repo_id=row["repo_id"],
        repo_root=row["repo_root"],
        summary=row["summary"],
        pid=row["pid"],
        pid_start=row["pid_start"],
        agent_pid=row["agent_pid"],
        agent_start=row["agent_start"],
        created_at=row["created_at"],
        last_seen=row["last_seen"],
        alive=bool(row["alive"]),
    )


def _intent(row: aiosqlite.Row) -> Intent:
    return Intent(
        intent_id=intent_key(row["id"]),
        peer_id=row["peer_id"],
        repo_id=row["repo_id"],
        pattern=row["pattern"],
        mode=row["mode"],
        reason=row["reason"],
        since=row["since"],
        expires_at=row["expires_at"],
        notify_when_free=bool(row["notify_when_free"]),
    )


def _message(row: aiosqlite.Row) -> Message:
    return Message(
        message_id=message_key(row["id"]),
        from_id=row["sender_id"],
        from_name=row["sender_name"],
        text=row["text"],
        sent_at=row["sent_at"],
        to=row["to_spec"],
        kind=row["kind"],
        pushed=row["delivered_at"] is not None,
        meta=json.loads(row["meta"]),
    )


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._tx_owner: asyncio.Task[Any] | None = None

    async def open(self) -> None:
        db = await aiosqlite.connect(self.path, isolation_level=None, timeout=30.0)
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=30000")
        self._db = db
        await self._migrate()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _migrate(self) -> None:
        db = self._conn
        (version,) = await (await db.execute("PRAGMA user_version")).fetchone()  # type: ignore[misc]
        if version > len(MIGRATIONS):
            raise LockdError(
                "internal",
                f"database {self.path} has schema version {version}, newer than this lockd "
                f"knows ({len(MIGRATIONS)}): upgrade lockd",
            )
        for index in range(version, len(MIGRATIONS)):
            _name, sql = MIGRATIONS[index]
            await db.execute("BEGIN IMMEDIATE")
            try:
                for statement in sql.split(";"):
                    if statement.strip():
                        await db.execute(statement)
                await db.execute(f"PRAGMA user_version={index + 1}")
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise LockdError("unavailable", "the store is not open")
        return self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[list[Callable[[], None]]]:
        """One atomic unit of work under the writer lock.

        Yields a list: callables appended to it run right after COMMIT, still
        under the lock, so wake-ups are published in commit order.
        """
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            self._tx_owner = asyncio.current_task()
            after_commit: list[Callable[[], None]] = []
            try:
                yield after_commit
            except BaseException:
                self._tx_owner = None
                await self._conn.execute("ROLLBACK")
                raise
            self._tx_owner = None
            await self._conn.execute("COMMIT")
            for callback in after_commit:
                callback()

    @property
    def _in_tx(self) -> bool:
        """True only inside the task that holds the current transaction."""
        return self._tx_owner is not None and self._tx_owner is asyncio.current_task()

    async def _exec(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        if not self._in_tx:
            raise LockdError("internal", "store writes must run inside transaction()")
        return await self._conn.execute(sql, tuple(params))

    async def _read(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        if self._in_tx:  # the lock is already ours
            return list(await (await self._conn.execute(sql, tuple(params))).fetchall())
        async with self._lock:
            return list(await (await self._conn.execute(sql, tuple(params))).fetchall())

    # ---- peers -------------------------------------------------------------
    async def load_peers(self) -> list[tuple[Peer, str]]:
        rows = await self._read("SELECT * FROM peers")
        return [(_peer(r), r["credential_hash"]) for r in rows]

    async def save_peer(self, peer: Peer, credential_hash: str) -> None:
        await self._exec(
            """INSERT INTO peers (peer_id, credential_hash, name, kind, client, host, cwd,
                   repo_id, repo_root, summary, pid, pid_start, agent_pid, agent_start,
                   created_at, last_seen, alive)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(peer_id) DO UPDATE SET name=excluded.name, kind=excluded.kind,
                   client=excluded.client, host=excluded.host, cwd=excluded.cwd,
                   repo_id=excluded.repo_id, repo_root=excluded.repo_root,
                   summary=excluded.summary, pid=excluded.pid, pid_start=excluded.pid_start,
                   agent_pid=excluded.agent_pid, agent_start=excluded.agent_start,
                   last_seen=excluded.last_seen, alive=excluded.alive""",
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
            ),
        )

    async def set_peer_fields(self, peer_id: str, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        await self._exec(f"UPDATE peers SET {cols} WHERE peer_id=?", [*fields.values(), peer_id])

    async def touch_peers(self, stamps: dict[str, float]) -> None:
        """Persist heartbeats in bulk (they are kept in memory between sweeps)."""
        for peer_id, at in stamps.items():
            await self._exec("UPDATE peers SET last_seen=? WHERE peer_id=?", (at, peer_id))

    # ---- messages ----------------------------------------------------------
    async def insert_message(
        self,
        sender: Peer | None,
        to_spec: str,
        text: str,
        recipients: list[str],
        kind: str = "message",
        meta: dict[str, str] | None = None,
        sender_id: str = "lockd",
        sender_name: str = "lockd",
    ) -> Message:
        now = time.time()
        sid, sname = (sender.peer_id, sender.name) if sender else (sender_id, sender_name)
        cur = await self._exec(
            "INSERT INTO messages (sender_id, sender_name, to_spec, kind, text, meta, sent_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (sid, sname, to_spec, kind, text, json.dumps(meta or {}), now),
        )
        mid = cur.lastrowid
        await self._conn.executemany(
            "INSERT INTO deliveries (recipient_id, message_id) VALUES (?, ?)",
            [(r, mid) for r in recipients],
        )
        return Message(message_key(mid), sid, sname, text, now, to_spec, kind, False, meta or {})  # type: ignore[arg-type]

    _MSG_SELECT = (
        "SELECT m.*, d.delivered_at FROM deliveries d JOIN messages m ON m.id = d.message_id"
        " WHERE d.recipient_id = ?"
    )

    async def undelivered(self, recipient: str) -> list[Message]:
        rows = await self._read(
            self._MSG_SELECT + " AND d.delivered_at IS NULL AND d.read_at IS NULL ORDER BY m.id",
            (recipient,),
        )
        return [_message(r) for r in rows]

    async def unread(self, recipient: str, limit: int = 500) -> list[Message]:
        rows = await self._read(
            self._MSG_SELECT + " AND d.read_at IS NULL ORDER BY m.id LIMIT ?", (recipient, limit)
        )
        return [_message(r) for r in rows]

    async def unread_count(self, recipient: str) -> int:
        rows = await self._read(
            "SELECT count(*) FROM deliveries WHERE recipient_id=? AND read_at IS NULL",
            (recipient,),
        )
        return int(rows[0][0])

    async def mark(self, recipient: str, ids: list[int], column: str) -> int:
        """Set delivered_at or read_at for these of the recipient's messages."""
        if column not in ("delivered_at", "read_at") or not ids:
            return 0
        marks = ",".join("?" * len(ids))
        cur = await self._exec(
            f"UPDATE deliveries SET {column}=? WHERE recipient_id=? AND {column} IS NULL"
            f" AND message_id IN ({marks})",
            [time.time(), recipient, *ids],
        )
        return cur.rowcount

    async def purge_messages(self, before: float) -> int:
        """Retention: drop deliveries both pushed-or-read and read before `before`."""
        cur = await self._exec(
            "DELETE FROM deliveries WHERE read_at IS NOT NULL AND read_at < ?", (before,)
        )
        await self._exec(
            "DELETE FROM messages WHERE sent_at < ? AND id NOT IN"
            " (SELECT message_id FROM deliveries)",
            (before,),
        )
        return cur.rowcount

    # ---- intents -----------------------------------------------------------
    async def live_intents(self) -> list[Intent]:
        rows = await self._read("SELECT * FROM intents WHERE released_at IS NULL ORDER BY id")
        return [_intent(r) for r in rows]

    async def insert_intent(self, intent: Intent) -> Intent:
        cur = await self._exec(
            "INSERT INTO intents (peer_id, repo_id, pattern, mode, reason, since, expires_at,"
            " notify_when_free) VALUES (?,?,?,?,?,?,?,?)",
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
        intent.intent_id = intent_key(cur.lastrowid)  # type: ignore[arg-type]
        return intent

    async def update_intent(self, intent_id: int, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        await self._exec(f"UPDATE intents SET {cols} WHERE id=?", [*fields.values(), intent_id])

    async def release_intent(self, intent_id: int, by: str | None, cause: str) -> None:
        await self._exec(
            "UPDATE intents SET released_at=?, released_by=?, release_cause=?"
            " WHERE id=? AND released_at IS NULL",
            (time.time(), by, cause, intent_id),
        )

    async def record_event(
        self,
        event: str,
        *,
        intent_id: int | None = None,
        peer_id: str | None = None,
        actor_id: str | None = None,
        repo_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = time.time()
        cur = await self._exec(
            "INSERT INTO intent_events (at, event, intent_id, peer_id, actor_id, repo_id, detail)"
            " VALUES (?,?,?,?,?,?,?)",
            (now, event, intent_id, peer_id, actor_id, repo_id, json.dumps(detail or {})),
        )
        return {
            "event_id": cur.lastrowid,
            "at": now,
            "event": event,
            "intent_id": intent_key(intent_id) if intent_id is not None else None,
            "peer_id": peer_id,
            "actor_id": actor_id,
            "repo": repo_id,
            "detail": detail or {},
        }

    async def events(self, limit: int = 100, repo_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE repo_id=?", [repo_id]) if repo_id else ("", [])
        rows = await self._read(
            f"SELECT * FROM intent_events {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [
            {
                "event_id": r["id"],
                "at": r["at"],
                "event": r["event"],
                "intent_id": intent_key(r["intent_id"]) if r["intent_id"] is not None else None,
                "peer_id": r["peer_id"],
                "actor_id": r["actor_id"],
                "repo": r["repo_id"],
                "detail": json.loads(r["detail"]),
            }
            for r in rows
        ]

    # ---- watches (notify_when_free) ---------------------------------------
    async def add_watch(self, peer_id: str, repo_id: str, patterns: list[str], mode: str) -> None:
        await self._exec(
            "INSERT INTO watches (peer_id, repo_id, patterns, mode, created_at) VALUES (?,?,?,?,?)",
            (peer_id, repo_id, json.dumps(patterns), mode, time.time()),
        )

    async def watches(self, repo_id: str) -> list[dict[str, Any]]:
        rows = await self._read("SELECT * FROM watches WHERE repo_id=? ORDER BY id", (repo_id,))
        return [
            {
                "id": r["id"],
                "peer_id": r["peer_id"],
                "patterns": json.loads(r["patterns"]),
                "mode": r["mode"],
            }
            for r in rows
        ]

    async def delete_watch(self, watch_id: int) -> None:
        await self._exec("DELETE FROM watches WHERE id=?", (watch_id,))
