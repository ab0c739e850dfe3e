"""Counts and summaries: the outbox summary every payment's offline limits read, and the
whole-journal stats of `posd journal stats`.

A summary must cost what the backlog does, not what the journal holds: the backlog is read
through the partial indexes of pending and quarantined records (schema v3) on the reader
connection, and the delivered count is counted once, then kept by the writer's own commits.
Where a damaged page breaks the aggregate queries, `salvage.py` counts what can be read.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any

from posd.journal.backlog import BacklogBound
from posd.journal.checkpoints import CheckpointStatus
from posd.journal.database import Database
from posd.journal.files import size_on_disk
from posd.journal.rows import MAX_AMOUNT_MINOR, RecordState
from posd.journal.salvage import Salvage
from sync.outbox import TAMPERED_PREFIX, OutboxSummary
from sync.timestamps import age_seconds

TAMPERED = "tampered"


class Counts:
    """The summary (with the backlog bound it feeds) and the cached delivered count."""

    def __init__(self, db: Database, backlog: BacklogBound, salvage: Salvage) -> None:
        self._db = db
        self._backlog = backlog
        self._salvage = salvage
        # Delivered records, counted once and then kept by this connection's own writes
        # (`delivered_count`), so that `summary` costs what the backlog does, not the journal.
        self._delivered: int | None = None
        self._delivered_version: int | None = None

    def summary(self) -> OutboxSummary:
        """Exact counts: the backlog read on the reader connection (through the partial
        indexes of pending and quarantined records: it costs what the backlog does), the
        delivered count from the writer's cache (`delivered_count`)."""
        taken_at = time.monotonic()
        try:
            with self._db.read_lock:
                summary, through_seq = self._read_summary()
        except sqlite3.DatabaseError:
            with self._db.lock:
                return self._salvage.summary_around_damage()
        self._backlog.observed(summary, through_seq, taken_at)
        return summary

    def _read_summary(self) -> tuple[OutboxSummary, int]:
        """The summary and the highest seq it counted, from one read transaction."""
        conn = self._db.reader
        conn.execute("BEGIN")
        try:
            counts = _backlog_counts(conn)
            counts[RecordState.DELIVERED] = self._delivered_without_waiting(conn)
            summary = summary_of(conn, counts)
            through_seq = conn.execute("SELECT MAX(seq) FROM records").fetchone()[0]
        finally:
            conn.execute("COMMIT")  # ends the read transaction; nothing was written
        return summary, int(through_seq or 0)

    def _delivered_without_waiting(self, reader: sqlite3.Connection) -> int:
        """The delivered count for a summary, which never waits for the writer: the writer's
        cache when its lock is free; else the cache as last kept (a settlement in progress
        may not be in it yet: a status figure, no limit depends on it); else a count on the
        reader connection."""
        if self._db.lock.acquire(blocking=False):
            try:
                return self.delivered_count(self._db.writer)
            finally:
                self._db.lock.release()
        cached = self._delivered
        if cached is not None:
            return cached
        row = reader.execute("SELECT COUNT(*) FROM records WHERE state = 'delivered'").fetchone()
        return int(row[0])

    def delivered_count(self, conn: sqlite3.Connection) -> int:
        """Delivered records: counted once (the one scan of the whole journal), then kept by
        this connection's own writes (`count_delivered`); a commit by another connection
        (`PRAGMA data_version` changed) has it counted again. Call under `Database.lock`."""
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if self._delivered is None or version != self._delivered_version:
            self._delivered = int(
                conn.execute("SELECT COUNT(*) FROM records WHERE state = 'delivered'").fetchone()[0]
            )
            self._delivered_version = version
        return self._delivered

    def count_delivered(self, changed: int | None) -> None:
        """This connection committed `changed` more (fewer, if negative) delivered records;
        None: not known, count again."""
        if self._delivered is not None:
            self._delivered = None if changed is None else self._delivered + changed


def stats(
    db: Database,
    clock: Callable[[], float],
    max_bytes: int,
    checkpoint_status: Callable[[], CheckpointStatus],
) -> dict[str, Any]:
    """Counts, bounds, backlog and size, for `posd journal stats` (read-only queries)."""
    with db.lock:
        counts = _state_counts(db.writer)
        summary = summary_of(db.writer, counts)
        import sqlite_utils  # inspection only: the hot paths never load it

        queries = sqlite_utils.Database(db.writer)
        bounds = next(queries.query("SELECT MIN(seq) AS first, MAX(seq) AS last FROM records"))
        keys = {
            row["provider"]: row["count"]
            for row in queries.query(
                "SELECT provider, COUNT(*) AS count FROM data_keys GROUP BY provider"
            )
        }
    oldest_age = age_seconds(summary.oldest_pending_captured_at, clock())
    return {
        "path": str(db.path),
        "records": {state.value: counts.get(state.value, 0) for state in RecordState},
        "first_seq": bounds["first"],
        "last_seq": bounds["last"],
        "oldest_pending_captured_at": summary.oldest_pending_captured_at,
        "oldest_pending_age_seconds": None if oldest_age is None else round(oldest_age, 3),
        "pending_amount_by_currency": dict(summary.pending_amount_by_currency),
        "data_keys": keys,
        "checkpoints": dataclasses.asdict(checkpoint_status()),
        "size_bytes": size_on_disk(db.path),
        "max_bytes": max_bytes,
    }


def _backlog_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Pending, quarantined and tampered records for `summary`, at a cost that grows with
    the backlog, not with the journal: through their partial indexes (schema v3)."""
    pending = conn.execute("SELECT COUNT(*) FROM records WHERE state = 'pending'").fetchone()
    quarantined, tampered = conn.execute(
        "SELECT COUNT(*), TOTAL(last_error LIKE ? || '%') FROM records WHERE state = 'quarantined'",
        (TAMPERED_PREFIX,),
    ).fetchone()
    return {
        RecordState.PENDING: int(pending[0]),
        RecordState.QUARANTINED: int(quarantined),
        TAMPERED: int(tampered),
    }


def _state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Records by state, plus `tampered` (quarantined ones that failed their check)."""
    rows = conn.execute(
        "SELECT state, state = 'quarantined' AND last_error LIKE ? || '%', COUNT(*) "
        "FROM records GROUP BY 1, 2",
        (TAMPERED_PREFIX,),
    )
    counts: dict[str, int] = {}
    for state, tampered, count in rows.fetchall():
        counts[str(state)] = counts.get(str(state), 0) + int(count)
        if tampered:
            counts[TAMPERED] = int(count)
    return counts


def summary_of(conn: sqlite3.Connection, counts: Mapping[str, int]) -> OutboxSummary:
    oldest = conn.execute(
        "SELECT captured_at FROM records WHERE state = 'pending' ORDER BY seq LIMIT 1"
    ).fetchone()
    # Any one record's bytes may be damaged: only valid JSON with an integer amount in
    # range is summed, and TOTAL (a float) cannot overflow where SUM would raise.
    amounts = conn.execute(
        "SELECT json_extract(meta, '$.currency'), "
        "TOTAL(json_extract(meta, '$.amount')) "
        "FROM records WHERE state = 'pending' AND json_valid(meta) "
        "AND json_type(meta, '$.currency') = 'text' "
        "AND json_type(meta, '$.amount') = 'integer' "
        "AND json_extract(meta, '$.amount') BETWEEN 0 AND ? "
        "GROUP BY 1",
        (MAX_AMOUNT_MINOR,),
    ).fetchall()
    return OutboxSummary(
        pending=counts.get(RecordState.PENDING, 0),
        quarantined=counts.get(RecordState.QUARANTINED, 0),
        delivered=counts.get(RecordState.DELIVERED, 0),
        oldest_pending_captured_at=oldest[0] if oldest else None,
        pending_amount_by_currency={str(cur): int(total or 0) for cur, total in amounts},
        tampered=counts.get(TAMPERED, 0),
    )
