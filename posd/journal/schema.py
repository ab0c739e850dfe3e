"""Journal schema and forward-only migrations, versioned with SQLite's `user_version`.

Migration N takes a database at version N-1 to version N inside one transaction. A database
newer than this code knows is refused (never silently downgraded).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

from posd.errors import SchemaError


def _v1(db: sqlite_utils.Database) -> None:
    db.table("data_keys").create(
        {
            "key_id": str,
            "provider": str,
            "key_arn": str,
            "algorithm": str,
            "wrapped_key": bytes,
            "encryption_context": str,
            "created_at": float,
        },
        pk="key_id",
        not_null={
            "provider",
            "key_arn",
            "algorithm",
            "wrapped_key",
            "encryption_context",
            "created_at",
        },
    )
    db.table("journal_state").create({"name": str, "value": bytes}, pk="name")
    # The records table is written by hand: it needs CHECK constraints and a foreign key.
    db.execute(
        """
        CREATE TABLE records (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            captured_at TEXT NOT NULL,
            client_ref TEXT,
            store_id TEXT NOT NULL,
            terminal_id TEXT NOT NULL,
            meta TEXT NOT NULL,
            data_key_id TEXT NOT NULL REFERENCES data_keys(key_id),
            nonce BLOB,
            ciphertext BLOB,
            chain BLOB NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'quarantined', 'purged')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            leased_until REAL NOT NULL DEFAULT 0,
            last_error TEXT,
            delivered_at REAL,
            remote_event_id TEXT
        )
        """
    )
    # No index on state here: every index costs each durable append another page write.
    # Leasing scans forward from a remembered floor instead (`leasing.PendingFloor`); v3 adds
    # partial indexes over the unsettled records only.
    db.execute(
        "CREATE UNIQUE INDEX records_client_ref ON records(client_ref) WHERE client_ref IS NOT NULL"
    )


def _v2(db: sqlite_utils.Database) -> None:
    """Alarms for the cloud: a record that failed its integrity check is never forwarded, but
    the fact is (seq and what failed, no payload), durably, until EventBridge took it."""
    db.table("alarms").create(
        {
            "alarm_id": int,
            "event_id": str,
            "kind": str,
            "seq": int,
            "detail": str,
            "raised_at": str,
            "sent_at": float,
        },
        pk="alarm_id",
        not_null={"event_id", "kind", "seq", "detail", "raised_at"},
    )


def _v3(db: sqlite_utils.Database) -> None:
    """Partial indexes over the records not yet settled: every payment checks the offline
    limits against the backlog (`Journal.summary`), and without them each check scanned the
    whole journal (bench/cost_growth.py; the figure is in docs/performance.md).

    The price: an append also writes the `records_pending` leaf page (one more page in the
    same WAL commit, same fsync), and a delivery removes the entry. Delivered rows, the bulk
    of a journal, are in neither index, so both stay as small as the backlog."""
    db.execute("CREATE INDEX records_pending ON records(seq) WHERE state = 'pending'")
    db.execute("CREATE INDEX records_quarantined ON records(seq) WHERE state = 'quarantined'")


def _v4(db: sqlite_utils.Database) -> None:
    """Checkpoints for the cloud (`posd.journal.checkpoints`): contiguous seq ranges with the
    chain values at both ends, kept until EventBridge took them. Written by hand for the
    UNIQUE and CHECK constraints that keep ranges from overlapping; the partial index makes
    "what is left to send" cheap however many checkpoints were sent."""
    db.execute(
        """
        CREATE TABLE checkpoints (
            checkpoint_id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            journal_id TEXT NOT NULL,
            first_seq INTEGER NOT NULL UNIQUE,
            last_seq INTEGER NOT NULL UNIQUE CHECK (last_seq >= first_seq),
            chain_before BLOB NOT NULL,
            chain BLOB NOT NULL,
            created_at TEXT NOT NULL,
            sent_at REAL
        )
        """
    )
    db.execute(
        "CREATE INDEX checkpoints_unsent ON checkpoints(checkpoint_id) WHERE sent_at IS NULL"
    )


def _v5(db: sqlite_utils.Database) -> None:
    """`data_keys.last_seq`: the highest seq that may use the key, NULL while a writer may still
    use it (`Journal.append` closes a key when it moves to another one, and on `close`).

    Purge removes a key once the journal's front is past its `last_seq`, without asking the
    records table which keys it still references: that question had no index and scanned the
    whole journal under the write lock (bench/cost_growth.py; the figure is in
    docs/performance.md).
    Keys already stored are closed at the current last seq: no record above it exists yet."""
    db.execute("ALTER TABLE data_keys ADD COLUMN last_seq INTEGER")
    db.execute("UPDATE data_keys SET last_seq = (SELECT COALESCE(MAX(seq), 0) FROM records)")


def _v6(db: sqlite_utils.Database) -> None:
    """Delivery keeps what became of each record in a database of its own
    (`posd.journal.outcomes`, `delivery.db`), which it alone writes: the journal's delivery
    columns, its alarms and its checkpoints' `sent_at` are no longer written (what they held
    is carried over when that file is made), and the indexes over them are dropped: an
    append no longer writes a `records_pending` page."""
    db.execute("DROP INDEX IF EXISTS records_pending")
    db.execute("DROP INDEX IF EXISTS records_quarantined")
    db.execute("DROP INDEX IF EXISTS checkpoints_unsent")


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v6,
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of the database at `conn` (0: no schema at all)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the database at `conn` to `SCHEMA_VERSION`."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: journal schema version {version} is newer than this posd understands "
            f"({SCHEMA_VERSION}); upgrade posd"
        )
    if version == SCHEMA_VERSION:
        return
    import sqlite_utils  # here: opening a journal that needs no migration does not pay for it

    db = sqlite_utils.Database(conn)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) >= target:
                # The other daemon (capture and delivery open one journal, and may start
                # together after an upgrade) made this step while we waited for the lock.
                conn.execute("ROLLBACK")
                continue
            MIGRATIONS[target - 1](db)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
