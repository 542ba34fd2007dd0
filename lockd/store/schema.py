"""The schema, as named, ordered migrations; PRAGMA user_version records how
many have run, so upgrades of a user's database never lose data."""

from __future__ import annotations

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
