"""The PostgreSQL store, for a team server: the SqliteStore's interface and
design on PostgreSQL.

Why psycopg 3 driven synchronously, not asyncpg (or psycopg's async API):
every write in lockd is a *synchronous* job, a plain function of a `Tx`
(lockd/store/tx.py), which the registry and claims code hand to
`store.write`. A job's statements run back to back inside one transaction
with no await between them, which is what keeps a claim's check-and-insert
free of interleaving. psycopg 3 speaks DB-API like sqlite3, so those same job
functions run unchanged on one dedicated thread holding one connection,
exactly as SqliteStore runs them on its thread. asyncpg would need every job
rewritten as a coroutine and a second copy of every statement.

The design is SqliteStore's (lockd/store/group.py): one writer task takes all
jobs waiting, runs them in a single transaction on the store's thread, each
under its own SAVEPOINT so a failing job changes nothing and fails alone,
COMMITs once, and only then answers each job and runs its after-commit
callback in commit order.

Atomicity across brokers: each batch first takes a transaction-scoped advisory
lock (`pg_advisory_xact_lock(LOCK_KEY)`, one key per database), so the batches
of every broker sharing the database run one at a time, never interleaved;
the lock is released by the COMMIT/ROLLBACK itself, so a crashed broker cannot
leave it held. Claims re-read the repo's live intents inside that locked
transaction (`shared = True`, see lockd/broker/intents.py), so two brokers can never
both grant overlapping claims.

Replicas: every transaction announces what it changed with pg_notify
(`Tx.changed`; PostgreSQL delivers it at COMMIT, never for a rollback), and
each broker LISTENs on a connection of its own (`follow`) and hands the other
brokers' changes, decoded into lockd.core.feed's records, to the registry:
messages to push to the streams held here, peers, claims and tokens to re-read.
The database stays the truth; a lost notice costs only latency, because after
the feed reconnects the registry re-reads everything (`Registry.resync`).

If the server goes away, requests fail with `unavailable` (503) and the next
request reconnects; nothing is retried silently, so no write is applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from lockd.core import feed
from lockd.core.errors import LockdError
from lockd.store.group import GroupCommitStore
from lockd.store.schema import PG_MIGRATIONS, pending
from lockd.store.tx import NOTIFY_CHANNEL, POSTGRES

log = logging.getLogger("lockd.store")

CONNECT_TIMEOUT_SECONDS = 5
# int64 key of the advisory lock every lockd broker on a database takes per
# write batch: the bytes of "lockd" (an arbitrary constant all brokers agree on).
LOCK_KEY = int.from_bytes(b"lockd", "big")
Conn = psycopg.Connection[dict[str, Any]]


def describe(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    user = f"{info['user']}@" if info.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{info.get('dbname') or ''}"


def _connect(url: str) -> Conn:
    return psycopg.connect(
        url,
        autocommit=True,  # transactions are explicit: BEGIN ... COMMIT per batch
        row_factory=dict_row,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name="lockd",
    )


def _rollback_if_open(conn: Conn) -> None:
    if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")


def _migrate(conn: Conn, url: str) -> None:
    """Apply the missing PG_MIGRATIONS in one transaction under the advisory
    lock, so brokers starting together on a fresh database migrate it once."""
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS lockd_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM lockd_schema").fetchone()
        if row is None:
            conn.execute("INSERT INTO lockd_schema (version) VALUES (0)")
            version = 0
        else:
            version = int(row["version"])
        for number, statements in pending(version, PG_MIGRATIONS, describe(url)):
            for statement in statements:
                conn.execute(statement)  # type: ignore[call-overload]
            conn.execute("UPDATE lockd_schema SET version = %s", (number,))
        conn.execute("COMMIT")
    except BaseException:
        _rollback_if_open(conn)
        raise


TABLES = ("peers", "messages", "deliveries", "intents", "intent_events", "watches", "users",
          "claim_versions")  # fmt: skip


def _vacuum(conn: Conn) -> None:
    for table in TABLES:  # autocommit: VACUUM cannot run in a transaction
        conn.execute(f"VACUUM (ANALYZE) {table}")  # type: ignore[call-overload]


def _usage(conn: Conn) -> dict[str, int]:
    row = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS n FROM pg_class c"
        " JOIN pg_namespace s ON s.oid = c.relnamespace"
        " WHERE c.relname = ANY(%s) AND s.nspname = current_schema()",
        (list(TABLES),),
    ).fetchone()
    return {"bytes": int(row["n"]) if row else 0, "free_bytes": 0}


class PostgresStore(GroupCommitStore):
    """SqliteStore's interface (open, close, write, read) on PostgreSQL."""

    # Other brokers may write the same database: claims must re-check the
    # database inside the write transaction rather than trust memory alone.
    shared = True
    dialect = POSTGRES

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.path = describe(url)  # what logs show; never the password
        self._conn: Conn | None = None
        # This broker among those sharing the database: it skips its own notices.
        self.replica_id = self.origin = "r-" + secrets.token_hex(4)
        self.feed_up = asyncio.Event()
        self._feed: asyncio.Task[None] | None = None

    # ---- the engine's part of group commit (lockd/store/group.py) ---------
    def _connection(self) -> Conn:
        """On the store's thread: the connection, (re)connecting if needed."""
        if self._conn is None or self._conn.closed:
            self._conn = _connect(self.url)
        return self._conn

    def _with_connection(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return super()._with_connection(fn, *args)
        except psycopg.OperationalError:
            if self._conn is not None and (self._conn.broken or self._conn.closed):
                self._disconnect()  # the next call reconnects
            raise

    def _begin(self, conn: Conn) -> None:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))

    def _rollback(self, conn: Conn) -> None:
        _rollback_if_open(conn)

    def _fails_batch(self, conn: Conn, exc: Exception) -> bool:
        return isinstance(exc, psycopg.OperationalError) and conn.broken

    def _unavailable(self, exc: Exception) -> LockdError | None:
        if not isinstance(exc, psycopg.OperationalError):
            return None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return LockdError(
            "unavailable", f"the PostgreSQL database {self.path} is unreachable: {first}"
        )

    async def follow(
        self,
        apply: Callable[[feed.Change], Awaitable[None]],
        resync: Callable[[], Awaitable[None]],
        wait: float = 5.0,
    ) -> None:
        """Hand other brokers' committed changes to `apply`, in commit order,
        from now on; returns once listening (or after `wait`, still trying)."""
        self._feed = asyncio.create_task(self._follow_forever(apply, resync))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.feed_up.wait(), wait)

    async def _follow_forever(
        self,
        apply: Callable[[feed.Change], Awaitable[None]],
        resync: Callable[[], Awaitable[None]],
    ) -> None:
        backoff = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    application_name="lockd-feed",
                    # A listener only reads: without keepalives a half-open
                    # connection would leave it waiting forever, silently deaf.
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=3,
                ) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    # Whatever committed before LISTEN took hold was not announced to us.
                    await resync()
                    self.feed_up.set()
                    backoff = 0.1
                    async for note in conn.notifies():
                        await self._take(note.payload, apply, resync)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the feed must outlive any failure
                log.warning("change feed from %s lost (%s); reconnecting", self.path, exc)
            self.feed_up.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _take(
        self,
        payload: str,
        apply: Callable[[feed.Change], Awaitable[None]],
        resync: Callable[[], Awaitable[None]],
    ) -> None:
        """One notice: applied if another broker's; a change missed (unreadable,
        or failing to apply) must not stay missed, so then everything is re-read
        (failing too: the feed reconnects, then resyncs again)."""
        try:
            notice = feed.decode(payload)
        except LockdError as exc:
            log.error("%s; re-reading all", exc.message)
            await resync()
            return
        if notice.origin == self.replica_id:
            return
        try:
            await apply(notice.change)
        except Exception:  # noqa: BLE001 - a change missed must not stay missed
            kind = type(notice.change).__name__
            log.exception("change %s not applied; re-reading all", kind)
            await resync()

    async def reclaim(self) -> None:
        """Let PostgreSQL reuse the space retention freed (autovacuum would, later)."""
        await self._call(_vacuum)

    async def usage(self) -> dict[str, int]:
        """Bytes lockd's tables and their indexes take in the database."""
        return await self._call(_usage)

    async def memory(self) -> dict[str, int]:
        """The database's memory is the server's, not this process's."""
        return {}

    async def open(self) -> None:
        self._start_thread("lockd-pg")
        await self._call(_migrate, self.url)
        self._start_writer()

    async def close(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
        await self._stop_writer()
        await self._stop_thread(self._disconnect)

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
