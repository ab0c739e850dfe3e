"""Delivery's own database, `delivery.db`: what became of each record, written by delivery alone.

The journal (`journal.db`) is capture's: records, data keys, checkpoints, appended by the
capture daemon. What delivery learns about them (leases, attempts and the retry schedule,
delivered and quarantined marks, alarms, which checkpoints EventBridge took) lives here, in
a file of its own, like a log and its consumer's offsets. Delivery's transactions take this
file's write lock, never the journal's: a payment's append never waits on them, and an
append no longer maintains an index of what is pending.

A record without a row in `outcomes` is pending, never tried. The journal's own `state`
column says only whether purge erased the record (`purged`); the states a journal written
before this file existed kept there are carried over once, when this file is made
(`create`). Reads that need both files attach this one to the journal's reader connection as
`delivery` and join on seq (`OUTCOME_JOIN`, `STATE`).

Bookkeeping kept in `delivery_state`: the journal this file belongs to (a file of another
journal is set aside), the number of delivered records (kept by the transactions that change
it, so a summary does not count the journal), and the pending floor (no record below it is
pending: a summary and a lease scan from it, never from the journal's front).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from posd.errors import JournalError, SchemaError
from posd.journal.files import DELIVERY_FILE

# The schema name this file is attached as, on the journal's reader (written out in the SQL
# constants below and in the modules that read it).
ALIAS = "delivery"
DELIVERY_SCHEMA_VERSION = 1

# The effective state of record `r` with its outcome `o` (OUTCOME_JOIN).
OUTCOME_JOIN = "LEFT JOIN delivery.outcomes o ON o.seq = r.seq"
STATE = "CASE WHEN r.state = 'purged' THEN 'purged' ELSE COALESCE(o.state, 'pending') END"
IS_PENDING = "r.state != 'purged' AND COALESCE(o.state, 'pending') = 'pending'"
FLOOR = "COALESCE((SELECT value FROM delivery.delivery_state WHERE name = 'pending_floor'), 0)"

JOURNAL_ID = "journal_id"
# A journal opened before it was given its identity (`identity.establish`): its delivery
# database takes the identity at once (`adopt`).
UNKNOWN_JOURNAL = "unknown"
DELIVERED_COUNT = "delivered_count"
PENDING_FLOOR = "pending_floor"
FLOOR_EPOCH = "floor_epoch"

# `{d}`: the schema the delivery tables are made in ("" for its own connection's main,
# "delivery." where attached); `{j}`: the journal's ("journal." or "main.").
_SCHEMA = (
    """
    CREATE TABLE {d}outcomes (
        seq INTEGER PRIMARY KEY,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'delivered', 'quarantined')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        leased_until REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered_at REAL,
        remote_event_id TEXT
    )
    """,
    "CREATE INDEX {d}outcomes_quarantined ON outcomes(seq) WHERE state = 'quarantined'",
    """
    CREATE TABLE {d}alarms (
        alarm_id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        detail TEXT NOT NULL,
        raised_at TEXT NOT NULL,
        sent_at REAL
    )
    """,
    "CREATE TABLE {d}checkpoints_sent (checkpoint_id INTEGER PRIMARY KEY, sent_at REAL NOT NULL)",
    "CREATE TABLE {d}delivery_state (name TEXT PRIMARY KEY, value NOT NULL)",
    # The delivered count, kept by every write that changes it (whoever makes it: the
    # daemon, the CLI, a salvage row by row), so no summary counts the journal.
    "CREATE TRIGGER {d}delivered_in AFTER INSERT ON outcomes WHEN NEW.state = 'delivered' "
    "BEGIN UPDATE delivery_state SET value = value + 1 WHERE name = 'delivered_count'; END",
    "CREATE TRIGGER {d}delivered_now AFTER UPDATE OF state ON outcomes "
    "WHEN NEW.state = 'delivered' AND OLD.state != 'delivered' "
    "BEGIN UPDATE delivery_state SET value = value + 1 WHERE name = 'delivered_count'; END",
    "CREATE TRIGGER {d}delivered_out AFTER DELETE ON outcomes WHEN OLD.state = 'delivered' "
    "BEGIN UPDATE delivery_state SET value = value - 1 WHERE name = 'delivered_count'; END",
    "INSERT INTO {d}delivery_state VALUES (?, ?), ('delivered_count', 0), "
    "('pending_floor', 0), ('floor_epoch', 0)",
    # What a journal kept in its own columns before this file existed (schema v5 and older).
    "INSERT INTO {d}outcomes SELECT seq, state, attempts, next_attempt_at, leased_until, "
    "last_error, delivered_at, remote_event_id FROM {j}records "
    "WHERE state IN ('delivered', 'quarantined') OR (state = 'pending' AND "
    "(attempts > 0 OR leased_until > 0 OR last_error IS NOT NULL))",
    "INSERT INTO {d}alarms SELECT alarm_id, event_id, kind, seq, detail, raised_at, sent_at "
    "FROM {j}alarms",
    "INSERT INTO {d}checkpoints_sent SELECT checkpoint_id, sent_at FROM {j}checkpoints "
    "WHERE sent_at IS NOT NULL",
)


def _make(conn: sqlite3.Connection, delivery: str, journal: str, journal_id: str) -> None:
    """The schema, filled from what the journal's own columns say (see `_SCHEMA`)."""
    for statement in _SCHEMA:
        sql = statement.format(d=delivery, j=journal)
        conn.execute(sql, (JOURNAL_ID, journal_id) if "?" in sql else ())


def path_of(state_dir: Path) -> Path:
    return state_dir / DELIVERY_FILE


def create(conn: sqlite3.Connection, journal: Path, journal_id: str) -> None:
    """Give the empty database at `conn` its schema and what the journal at `journal` kept
    of delivery in its own columns, in one transaction; a no-op if another process (the other
    daemon) made it first. `conn` is in autocommit mode."""
    if _version(conn) != 0:
        return  # made already: opening it takes no lock
    conn.execute("ATTACH DATABASE ? AS journal", (f"{journal.resolve().as_uri()}?mode=ro",))
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _version(conn) == 0:
                _make(conn, "", "journal.", journal_id)
                conn.execute(f"PRAGMA user_version = {DELIVERY_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("DETACH DATABASE journal")


def _version(conn: sqlite3.Connection, schema: str = "main") -> int:
    return int(conn.execute(f"PRAGMA {schema}.user_version").fetchone()[0])


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    version = _version(conn)
    if version > DELIVERY_SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: delivery database version {version} is newer than this posd "
            f"understands ({DELIVERY_SCHEMA_VERSION}); upgrade posd"
        )


def journal_id_of(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM delivery_state WHERE name = ?", (JOURNAL_ID,)).fetchone()
    return None if row is None else str(row[0])


def adopt(conn: sqlite3.Connection, journal_id: str) -> None:
    """Give a database made for a journal of unknown identity the journal's identity."""
    conn.execute(
        "UPDATE delivery_state SET value = ? WHERE name = ? AND value = ?",
        (journal_id, JOURNAL_ID, UNKNOWN_JOURNAL),
    )


def set_aside(path: Path) -> Path:
    """Rename the delivery database of another journal (and its WAL) out of the way: kept for
    a technician, never read again. Its records' outcomes are not this journal's."""
    aside = path.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.aside")
    try:
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        os.replace(path, aside)
    except OSError as error:
        raise JournalError(f"cannot set {path} aside: {error.strerror}") from error
    return aside


def attach(conn: sqlite3.Connection, path: Path, *, read_only: bool, journal_id: str) -> None:
    """Attach the delivery database at `path` to the journal connection `conn` as `ALIAS`
    (before `query_only` is set on it). Read-only, a state dir without one (a journal no
    daemon of this version opened yet) gets an in-memory one made from what the journal's
    own columns say."""
    if read_only and not path.exists():
        conn.execute(f"ATTACH DATABASE ':memory:' AS {ALIAS}")
        _make(conn, f"{ALIAS}.", "main.", journal_id)
        return
    mode = "?mode=ro" if read_only else ""
    conn.execute(f"ATTACH DATABASE ? AS {ALIAS}", (f"{path.resolve().as_uri()}{mode}",))
