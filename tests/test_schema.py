"""The migrations (lockd/store/schema.py): written once for both engines, yet
what every released migration does to a database stays exactly what it did
when first shipped, and a database an earlier lockd created opens and
migrates, its rows kept, to the schema a fresh one gets."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockd.store.postgres import PostgresStore
from lockd.store.schema import MIGRATIONS, PG_MIGRATIONS, pending
from lockd.store.sqlite import SqliteStore

RELEASED = json.loads((Path(__file__).parent / "data" / "migrations_released.json").read_text())
OLD_SQLITE: list[list[str]] = RELEASED["sqlite"]
OLD_POSTGRES: list[list[str]] = RELEASED["postgres"]


def _words(sql: str) -> str:
    return " ".join(sql.split())


def _statements(sql: str) -> list[str]:
    """As the stores run a migration (`pending`)."""
    return [s for s in sql.split(";") if s.strip()]


def test_sqlite_migrations_are_the_released_text_to_the_byte() -> None:
    """SQLite keeps each CREATE statement's text in sqlite_master: the same
    text, so that old and new databases are alike to the byte."""
    assert [list(m) for m in MIGRATIONS] == OLD_SQLITE


def test_postgres_migrations_are_the_released_statements() -> None:
    """PostgreSQL keeps no text: the same statements, word for word."""
    assert [n for n, _ in PG_MIGRATIONS] == [n for n, _ in OLD_POSTGRES]
    for (_, new), (_, old) in zip(PG_MIGRATIONS, OLD_POSTGRES, strict=True):
        assert list(map(_words, _statements(new))) == list(map(_words, _statements(old)))


def test_pending_numbers_what_a_database_still_needs() -> None:
    assert [n for n, _ in pending(0, MIGRATIONS, "db")] == [1, 2, 3, 4]
    assert [n for n, _ in pending(2, MIGRATIONS, "db")] == [3, 4]
    assert pending(4, MIGRATIONS, "db") == []


# ---- SQLite: a database from an earlier lockd ---------------------------------------
def _old_sqlite(path: Path, version: int) -> None:
    """What an earlier lockd left: its released migrations up to `version`, and rows."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for number, (_, sql) in enumerate(OLD_SQLITE[:version], start=1):
            for statement in _statements(sql):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number}")
        db.execute(
            "INSERT INTO peers (peer_id, credential_hash, name, kind, client, host, cwd, repo_id,"
            " repo_root, created_at, last_seen) VALUES ('p-1', 'h', 'ana', 'agent', 'cli', 'm',"
            " '/r', 'repo', '/r', 1.5, 2.5)"
        )
        db.execute(
            "INSERT INTO messages (sender_id, sender_name, to_spec, text, sent_at)"
            " VALUES ('p-1', 'ana', 'bob', 'kept', 3.5)"
        )
        db.execute("INSERT INTO deliveries (recipient_id, message_id) VALUES ('p-2', 1)")
        db.execute(
            "INSERT INTO intents (peer_id, repo_id, pattern, mode, reason, since)"
            " VALUES ('p-1', 'repo', 'src/**', 'exclusive', 'work', 4.5)"
        )
    finally:
        db.close()


def _sqlite_schema(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
        ).fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_an_earlier_lockds_sqlite_database_opens_and_migrates(
    tmp_path: Path, version: int
) -> None:
    old, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    _old_sqlite(old, version)
    for path in (old, fresh):
        store = SqliteStore(path)
        await store.open()
        await store.close()
    assert _sqlite_schema(old) == _sqlite_schema(fresh)
    store = SqliteStore(old)
    await store.open()
    try:
        ((peer, _),) = await store.read(lambda tx: tx.load_peers())
        assert (peer.name, peer.user, peer.last_seen) == ("ana", "local", 2.5)
        assert [m.text for m in await store.read(lambda tx: tx.unread("p-2"))] == ["kept"]
        assert [i.pattern for i in await store.read(lambda tx: tx.live_intents("repo"))] == [
            "src/**"
        ]
    finally:
        await store.close()
    db = sqlite3.connect(old)
    assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    db.close()


# ---- PostgreSQL: the same, each database a schema of the session's database ----------
@pytest.fixture
def pg_schemas(pg_url: str) -> Iterator[tuple[str, list[str]]]:
    names = ["lockd_old", "lockd_migrated", "lockd_fresh"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            conn.execute(f"CREATE SCHEMA {name}")
    yield pg_url, names
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _in_schema(url: str, schema: str) -> str:
    return f"{url}?options=-csearch_path%3D{schema}"


def _pg_old(url: str, version: int) -> None:
    """An earlier lockd's database: its released statements, its version row, rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE lockd_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO lockd_schema (version) VALUES (%s)", (version,))
        for _, sql in OLD_POSTGRES[:version]:
            for statement in _statements(sql):
                conn.execute(statement)  # type: ignore[call-overload]
        conn.execute(
            "INSERT INTO intents (peer_id, repo_id, pattern, mode, reason, since)"
            " VALUES ('p-1', 'repo', 'src/**', 'exclusive', 'work', 4.5)"
        )


def _pg_schema(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, ordinal_position, data_type, is_nullable,"
            " column_default, is_identity, identity_generation FROM information_schema.columns"
            " WHERE table_schema = %s ORDER BY 1, 3",
            (schema,),
        ).fetchall()
        indexes = conn.execute(
            "SELECT tablename, indexname, replace(indexdef, %s, '') FROM pg_indexes"
            " WHERE schemaname = %s ORDER BY 2",
            (schema + ".", schema),
        ).fetchall()
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE connamespace = %s::regnamespace ORDER BY 2",
            (schema,),
        ).fetchall()
    # Names qualified by the schema (a foreign key's table) read alike in each.
    strip = lambda rows: [tuple(str(v).replace(schema + ".", "") for v in r) for r in rows]  # noqa: E731
    return {"columns": columns, "indexes": indexes, "constraints": strip(constraints)}


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_an_earlier_lockds_postgres_database_opens_and_migrates(
    pg_schemas: tuple[str, list[str]], version: int
) -> None:
    url, (old, migrated, fresh) = pg_schemas
    _pg_old(_in_schema(url, old), len(OLD_POSTGRES))  # as the released code left a new one
    _pg_old(_in_schema(url, migrated), version)
    for schema in (migrated, fresh):
        store = PostgresStore(_in_schema(url, schema))
        await store.open()
        await store.close()
    expected = _pg_schema(url, old)
    assert _pg_schema(url, migrated) == expected
    assert _pg_schema(url, fresh) == expected
    store = PostgresStore(_in_schema(url, migrated))
    await store.open()
    try:
        assert [i.pattern for i in await store.read(lambda tx: tx.live_intents("repo"))] == [
            "src/**"
        ]
    finally:
        await store.close()
