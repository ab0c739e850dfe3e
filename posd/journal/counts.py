"""Counts and summaries: the outbox summary every payment's offline limits read, and the
whole-journal stats of `posd journal stats`.

A summary must cost what the backlog does, not what the journal holds: the backlog is read
from the pending floor on, on the reader connection with delivery's database attached
(`outcomes.py`), where the quarantined records have an index and the delivered count is kept
by the writes that change it.
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
from posd.journal.outcomes import DELIVERED_COUNT, FLOOR, IS_PENDING, OUTCOME_JOIN, STATE
from posd.journal.rows import MAX_AMOUNT_MINOR, RecordState
from posd.journal.salvage import Salvage
from sync.outbox import TAMPERED_PREFIX, OutboxSummary
from sync.timestamps import age_seconds

TAMPERED = "tampered"


class Counts:
    """The summary, and the backlog bound it feeds."""

    def __init__(self, db: Database, backlog: BacklogBound, salvage: Salvage) -> None:
        self._db = db
        self._backlog = backlog
        self._salvage = salvage

    def summary(self) -> OutboxSummary:
        """Exact counts from one read transaction on the reader connection: the backlog from
        the pending floor on (it costs what the backlog does), the rest from delivery's
        database (`outcomes.py`: quarantined records through their index, the delivered
        count as its writes keep it)."""
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
            # Opened read-only, for a technician (`posd status` on a stopped lane): every row
            # is read, so a damaged page anywhere is found (and counted around, as `unreadable`),
            # not only one in the backlog.
            counts = _state_counts(conn) if self._db.read_only else _backlog_counts(conn)
            summary = summary_of(conn, counts)
            through_seq = conn.execute("SELECT MAX(seq) FROM records").fetchone()[0]
        finally:
            conn.execute("COMMIT")  # ends the read transaction; nothing was written
        return summary, int(through_seq or 0)


def stats(
    db: Database,
    clock: Callable[[], float],
    max_bytes: int,
    checkpoint_status: Callable[[], CheckpointStatus],
) -> dict[str, Any]:
    """Counts, bounds, backlog and size, for `posd journal stats` (read-only queries)."""
    with db.read_lock:
        counts = _state_counts(db.reader)
        summary = summary_of(db.reader, counts)
        import sqlite_utils  # inspection only: the hot paths never load it

        queries = sqlite_utils.Database(db.reader)
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
    """Pending, quarantined, tampered and delivered records for `summary`, at a cost that
    grows with the backlog, not with the journal: pending from the pending floor on,
    quarantined through their index in delivery's database, delivered as kept there."""
    pending = conn.execute(
        f"SELECT COUNT(*) FROM records r {OUTCOME_JOIN} "  # noqa: S608 - constants
        f"WHERE r.seq >= {FLOOR} AND {IS_PENDING}"
    ).fetchone()
    quarantined, tampered = conn.execute(
        "SELECT COUNT(*), TOTAL(last_error LIKE ? || '%') FROM delivery.outcomes "
        "WHERE state = 'quarantined'",
        (TAMPERED_PREFIX,),
    ).fetchone()
    delivered = conn.execute(
        "SELECT value FROM delivery.delivery_state WHERE name = ?", (DELIVERED_COUNT,)
    ).fetchone()
    return {
        RecordState.PENDING: int(pending[0]),
        RecordState.QUARANTINED: int(quarantined),
        RecordState.DELIVERED: int(delivered[0]) if delivered else 0,
        TAMPERED: int(tampered),
    }


def _state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Records by state, plus `tampered` (quarantined ones that failed their check)."""
    rows = conn.execute(
        f"SELECT {STATE}, {STATE} = 'quarantined' AND o.last_error LIKE ? || '%', "  # noqa: S608
        f"COUNT(*) FROM records r {OUTCOME_JOIN} GROUP BY 1, 2",
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
        f"SELECT r.captured_at FROM records r {OUTCOME_JOIN} "  # noqa: S608 - constants
        f"WHERE r.seq >= {FLOOR} AND {IS_PENDING} ORDER BY r.seq LIMIT 1"
    ).fetchone()
    # Any one record's bytes may be damaged: only valid JSON with an integer amount in
    # range is summed, and TOTAL (a float) cannot overflow where SUM would raise.
    amounts = conn.execute(
        "SELECT json_extract(r.meta, '$.currency'), "  # noqa: S608 - constants
        "TOTAL(json_extract(r.meta, '$.amount')) "
        f"FROM records r {OUTCOME_JOIN} WHERE r.seq >= {FLOOR} AND {IS_PENDING} "
        "AND json_valid(r.meta) "
        "AND json_type(r.meta, '$.currency') = 'text' "
        "AND json_type(r.meta, '$.amount') = 'integer' "
        "AND json_extract(r.meta, '$.amount') BETWEEN 0 AND ? "
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
