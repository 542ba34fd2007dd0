"""A real PostgreSQL database for the tests that need one: the session
creates its own database on the server (LOCKD_TEST_PG, default the machine's
127.0.0.1:5432) and drops it at the end; `pg` empties the tables per test.
Without a server these tests FAIL (CI must not pass silently without
PostgreSQL) unless LOCKD_SKIP_POSTGRES=1."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

PG_SERVER = os.environ.get("LOCKD_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
TABLES = "peers, messages, deliveries, intents, intent_events, watches, users, claim_versions"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database for this session on the real server; dropped after."""
    admin_url = f"{PG_SERVER}/postgres"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("LOCKD_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL unreachable at {PG_SERVER} and LOCKD_SKIP_POSTGRES=1")
        pytest.fail(
            f"PostgreSQL is required for tests/test_postgres.py and is unreachable at "
            f"{PG_SERVER} ({str(exc).strip()}). Start it (user postgres, trust auth), point "
            "LOCKD_TEST_PG at another server, or set LOCKD_SKIP_POSTGRES=1 to skip.",
            pytrace=False,
        )
    name = f"lockd_test_{secrets.token_hex(6)}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def pg_query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def pg_count(url: str, sql: str) -> int:
    return int(pg_query(url, sql)[0][0])


@pytest.fixture
def pg(pg_url: str) -> str:
    """The session database, emptied: every test starts from no rows."""
    with (
        psycopg.connect(pg_url, autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.UndefinedTable),  # none migrated it yet
    ):
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
    return pg_url


def db_count(broker: Any, sql: str) -> int:
    """A count from the broker's own store, SQLite file or PostgreSQL database,
    so one test body checks "nothing was written" on either engine."""
    if broker.db:
        return pg_count(broker.db, sql)
    import sqlite3

    db = sqlite3.connect(broker.home / "lockd.db")
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()
