"""The schema, as named, ordered migrations, once per engine: upgrades of a
user's database never lose data. SQLite records how many have run in PRAGMA
user_version; PostgreSQL in the one-row table `lockd_schema(version)`.

Every migration exists in both lists under the same name and position, so a
version number means the same schema on either engine. The PostgreSQL DDL is
the SQLite DDL with PostgreSQL's types: DOUBLE PRECISION for REAL (PostgreSQL's
REAL is 4 bytes, too coarse for epoch timestamps), BIGINT identity columns for
AUTOINCREMENT, and no WITHOUT ROWID. Booleans stay INTEGER 0/1 on both, so the
statements in tx.py bind the same values everywhere."""

from __future__ import annotations

from lockd.core.errors import LockdError

# A counter per repo, bumped by every claim change: a broker sharing the
# database knows its memory of a repo is exact when the counter is what it last
# saw, and decides a claim without re-reading the repo's intents; and whether
# the repo compares paths ignoring case (set by its first claim). And each
# send's request key: a send retried (a broker or replica died after reading
# it) is stored once. The same statements on both engines.
CLAIM_VERSIONS = (
    "0003_claim_versions",
    """
    CREATE TABLE claim_versions (
        repo_id TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
        ignorecase INTEGER NOT NULL DEFAULT 0
    );
    ALTER TABLE messages ADD COLUMN request_key TEXT;
    CREATE UNIQUE INDEX messages_request_key ON messages (sender_id, request_key);
    """,
)

# SQLite: named, ordered migrations; PRAGMA user_version records how many have run.
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
    # A team server's per-user tokens (sha256 only) and the user each peer and
    # each recorded action belongs to. `user_name`, not `user`: a reserved word
    # in PostgreSQL. Rows from before this migration were the machine token's.
    (
        "0002_users",
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at REAL
        );
        ALTER TABLE peers ADD COLUMN user_name TEXT NOT NULL DEFAULT 'local';
        ALTER TABLE intent_events ADD COLUMN actor_user TEXT;
        """,
    ),
    CLAIM_VERSIONS,
]

# PostgreSQL: the same migrations, same names, same order (see the docstring).
PG_MIGRATIONS: list[tuple[str, str]] = [
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
            pid BIGINT, pid_start DOUBLE PRECISION, agent_pid BIGINT,
            agent_start DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL,
            alive INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE messages (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            sender_id TEXT NOT NULL,
            sender_name TEXT NOT NULL,
            to_spec TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'message',
            text TEXT NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            sent_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE deliveries (
            recipient_id TEXT NOT NULL,
            message_id BIGINT NOT NULL REFERENCES messages(id),
            delivered_at DOUBLE PRECISION,
            read_at DOUBLE PRECISION,
            PRIMARY KEY (recipient_id, message_id)
        );
        CREATE INDEX deliveries_unread ON deliveries(recipient_id, read_at);
        CREATE TABLE intents (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            peer_id TEXT NOT NULL,
            repo_id TEXT NOT NULL,
            pattern TEXT NOT NULL,
            mode TEXT NOT NULL,
            reason TEXT NOT NULL,
            since DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            notify_when_free INTEGER NOT NULL DEFAULT 0,
            released_at DOUBLE PRECISION,
            released_by TEXT,
            release_cause TEXT
        );
        CREATE INDEX intents_live ON intents(repo_id) WHERE released_at IS NULL;
        CREATE TABLE intent_events (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL,
            event TEXT NOT NULL,
            intent_id BIGINT,
            peer_id TEXT,
            actor_id TEXT,
            repo_id TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE watches (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            peer_id TEXT NOT NULL,
            repo_id TEXT NOT NULL,
            patterns TEXT NOT NULL,
            mode TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    (
        "0002_users",
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at DOUBLE PRECISION
        );
        ALTER TABLE peers ADD COLUMN user_name TEXT NOT NULL DEFAULT 'local';
        ALTER TABLE intent_events ADD COLUMN actor_user TEXT;
        """,
    ),
    CLAIM_VERSIONS,
]

assert [n for n, _ in PG_MIGRATIONS] == [n for n, _ in MIGRATIONS], "one migration list per engine"


def pending(
    version: int, migrations: list[tuple[str, str]], where: str
) -> list[tuple[int, list[str]]]:
    """(version after it, statements) for each migration a database at `version`
    still needs; refuses a database newer than this lockd rather than guess."""
    if version > len(migrations):
        raise LockdError(
            "internal",
            f"database {where} has schema version {version}, newer "
            f"than this lockd knows ({len(migrations)}): upgrade lockd",
        )
    return [
        (index + 1, [stmt for stmt in sql.split(";") if stmt.strip()])
        for index, (_name, sql) in enumerate(migrations)
        if index >= version
    ]
