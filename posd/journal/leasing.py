"""Lease and settle, the normal path: which pending rows are due, the check each must pass
before it is handed out, and the one transaction that quarantines the bad and hides the good.

Lease is a hot path: plain `sqlite3` with hand-written SQL, one statement for the whole lease
where it can be. What happens where a damaged page breaks these is `salvage.py`; `delivery.py`
tries this path first and that one after.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from posd.ids import uuid7_str
from posd.journal.identity import accepted_gap, chain_at
from posd.journal.outcomes import IS_PENDING, OUTCOME_JOIN
from posd.journal.rows import (
    COLUMN_INDEX,
    LEASED_UNTIL,
    NEXT_ATTEMPT_AT,
    linked_record,
    outbox_record,
    select_records_with_previous,
)
from posd.journal.verify import check_row
from sync.outbox import TAMPERED_PREFIX, Lease, OutboxRecord, Quarantined
from sync.timestamps import rfc3339
from wire.events import TAMPERED_RECORD_ALARM

# Writes to delivery's own database (`outcomes.py`, on `Database.outcomes`): a record without
# an outcome row is pending, so each write inserts one or updates the one there while the
# record is still pending. Parameters are (reason, seq) and the like: seq last.
QUARANTINE = (
    "INSERT INTO outcomes (seq, state, last_error) VALUES (?2, 'quarantined', ?1) "
    "ON CONFLICT (seq) DO UPDATE SET state = 'quarantined', last_error = excluded.last_error, "
    "leased_until = 0 WHERE state = 'pending'"
)
# A lease is over when it ran out, or when it ends further ahead than a lease lasts: it was
# taken before the wall clock went back (params: now, now + lease_seconds).
LEASE_OVER = f"({LEASED_UNTIL} <= ? OR {LEASED_UNTIL} > ?)"
RELEASE_LEASES = "UPDATE outcomes SET leased_until = 0 WHERE state = 'pending' AND leased_until > 0"

_EPOCH = "SELECT value FROM delivery.delivery_state WHERE name = 'floor_epoch'"
SEQ, PREVIOUS_CHAIN = COLUMN_INDEX["seq"], COLUMN_INDEX["previous_chain"]  # by position: hot
Candidate = tuple[sqlite3.Row, bytes | None]
"""A due row and the chain value it must link to (see `lease_problem`)."""


class PendingFloor:
    """The lowest seq that is pending, found by scanning forward from the last one known.

    There is no index on what is pending (in the journal it would cost every append a page
    write); this floor keeps leasing amortised O(1) instead. Only `retry_quarantined` makes
    lower records pending again: ours resets the floor, another process's shows up as a
    change of delivery's database (`PRAGMA data_version` on its connection), which resets it
    too. The floor found is kept in delivery's database too (`outcomes.PENDING_FLOOR`, by
    `settle_lease`): the capture process's summaries scan from it.
    """

    def __init__(self) -> None:
        self.seq = 0
        self.epoch = 0
        self.kept: int | None = None  # the floor last written to delivery's database
        self._data_version: int | None = None

    def find(self, conn: sqlite3.Connection, data_version: int) -> int:
        """The floor, read on the journal's reader `conn`; `data_version`: delivery's
        database's, on its own connection."""
        if data_version != self._data_version:
            self._data_version = data_version
            self.seq = 0
        try:
            conn.execute("BEGIN")
            try:
                self.epoch = int(conn.execute(_EPOCH).fetchone()[0])
                row = conn.execute(
                    f"SELECT r.seq FROM records r {OUTCOME_JOIN} "  # noqa: S608 - constants
                    f"WHERE r.seq >= ? AND {IS_PENDING} ORDER BY r.seq LIMIT 1",
                    (self.seq,),
                ).fetchone()
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError:
            return self.seq  # a damaged page: lease walks from the floor it knows
        if row is not None:
            self.seq = int(row[0])
        return self.seq


def due(
    conn: sqlite3.Connection,
    floor: PendingFloor,
    data_version: int,
    now: float,
    limit: int,
    void_after: float,
    may_lease: Callable[[int, float], bool],
) -> list[Candidate]:
    """Due pending rows (read on the journal's reader `conn`), each with the chain value it
    must link to. A lease that ends after
    `void_after` (now + lease_seconds) was taken before the wall clock went back: void.
    `may_lease` says no for what this process knows better than a damaged file (salvage).
    Raises `sqlite3.DatabaseError` where a damaged page breaks the query."""
    rows = conn.execute(
        select_records_with_previous(
            f"WHERE r.seq >= ? AND {IS_PENDING} AND {NEXT_ATTEMPT_AT} <= ? "
            f"AND {LEASE_OVER} ORDER BY r.seq LIMIT ?"
        ),
        (floor.find(conn, data_version), now, now, void_after, limit),
    ).fetchall()
    return [(row, link_of(conn, row)) for row in rows if may_lease(row[SEQ], now)]


def link_of(conn: sqlite3.Connection, row: sqlite3.Row) -> bytes:
    previous = row[PREVIOUS_CHAIN]
    if previous is None:
        previous = chain_before_first(conn, int(row[SEQ]))
    return b"" if previous is None else bytes(previous)  # b"": its predecessor is gone


def chain_before_first(conn: sqlite3.Connection, seq: int) -> bytes | None:
    """The chain value a record links to when the row before it is gone: the anchor,
    genesis, or the last record before a gap a technician accepted."""
    previous = seq - 1
    gap = accepted_gap(conn)
    if gap is not None and gap[1] == previous:
        previous = gap[0]
    return chain_at(conn, previous)


@dataclass(frozen=True)
class Checked:
    """Candidates judged: the records to hand out, and those refused with their reason."""

    leased: list[OutboxRecord]
    refused: list[Quarantined]


def check_candidates(candidates: Sequence[Candidate]) -> Checked:
    """Check each candidate against its chain link (no SQL): done before the write
    transaction, so the journal's write lock is held for the writes alone and a payment's
    append in the other process never waits for these checks."""
    leased: list[OutboxRecord] = []
    refused: list[Quarantined] = []
    for row, link in candidates:
        fast = None if not link else linked_record(row, link)
        if fast is not None:
            leased.append(fast)
            continue
        # The record view is built first and its AAD reused by the link check: one
        # metadata parse and one AAD encoding per record, not two (measured, bench/drain.py).
        try:
            record: OutboxRecord | Exception = outbox_record(row)
        except (ValueError, KeyError, TypeError) as error:
            record = error
        aad = None if isinstance(record, Exception) else record.aad
        reason = lease_problem(row, link, aad)
        if reason is None:
            if not isinstance(record, Exception):
                leased.append(record)
                continue
            reason = f"corrupt record: {record}"
        refused.append(Quarantined(int(row["seq"]), reason))
    return Checked(leased, refused)


def settle_lease(
    conn: sqlite3.Connection,
    checked: Checked,
    now: float,
    lease_seconds: float,
    clock: Callable[[], float],
    damaged: Sequence[Quarantined] = (),
    floor: PendingFloor | None = None,
) -> Lease:
    """Inside the write transaction on delivery's database: quarantine the refused (an alarm
    for the tampered), hide the good for `lease_seconds`, and keep the pending floor found
    (unless a retry lowered it since it was read: the epoch moved)."""
    if floor is not None and floor.seq != floor.kept:
        kept = conn.execute(
            "UPDATE delivery_state SET value = ? WHERE name = 'pending_floor' "
            "AND (SELECT value FROM delivery_state WHERE name = 'floor_epoch') = ?",
            (floor.seq, floor.epoch),
        ).rowcount
        if kept:
            floor.kept = floor.seq
    refused = checked.refused
    if refused:
        conn.executemany(QUARANTINE, [(item.reason, item.seq) for item in refused])
        raised_at = rfc3339(clock())
        conn.executemany(
            "INSERT INTO alarms (event_id, kind, seq, detail, raised_at) VALUES (?, ?, ?, ?, ?)",
            [
                (uuid7_str(), TAMPERED_RECORD_ALARM, item.seq, item.reason, raised_at)
                for item in refused
                if item.tampered
            ],
        )
    # Still pending and not leased by anyone since it was read: another process's lease
    # in between makes the update a no-op, and the record is not handed out twice.
    # One statement for the whole lease (not one per record): RETURNING names the rows
    # it did hide.
    leased = checked.leased
    hidden_seqs = _hide(conn, [record.seq for record in leased], now, now + lease_seconds)
    hidden = [record for record in leased if record.seq in hidden_seqs]
    return Lease(hidden, [*refused, *damaged])


def lease_problem(row: sqlite3.Row, link: bytes | None, aad: bytes | None = None) -> str | None:
    """Why a pending row must not be delivered (None if it checks out). `link` is the
    chain value it must link to: b"" if its predecessor is gone, None if unknown (the row
    before it cannot be read: only the record's own structure is checked). `aad`: the
    row's AAD if already computed from this very row."""
    if link == b"":
        return f"{TAMPERED_PREFIX} the record before it (seq {row['seq'] - 1}) is missing"
    problems = check_row(row, link, aad)
    if not problems:
        return None
    problem = problems[0]
    if problem.kind == "chain":
        return f"{TAMPERED_PREFIX} {problem.detail}"
    return f"corrupt record: {problem.detail}"


def would_quarantine(conn: sqlite3.Connection, row: sqlite3.Row) -> str | None:
    """Why a lease would quarantine `row` (a `select_records_with_previous` row), or None:
    the checks `settle_lease` makes, for a record about to be retried."""
    try:
        record = outbox_record(row)
    except (ValueError, KeyError, TypeError) as error:
        return f"corrupt record: {error}"
    return lease_problem(row, link_of(conn, row), record.aad)


def _hide(conn: sqlite3.Connection, seqs: Sequence[int], now: float, until: float) -> set[int]:
    """Lease the records `seqs` until `until` where they are still pending and not leased by
    anyone since they were read (another process's lease in between makes the update skip
    that row, so it is not handed out twice). Returns the seqs actually leased."""
    if not seqs:
        return set()
    values = ",".join(["(?, ?)"] * len(seqs))
    rows = conn.execute(
        f"INSERT INTO outcomes (seq, leased_until) VALUES {values} "  # noqa: S608 - marks only
        "ON CONFLICT (seq) DO UPDATE SET leased_until = excluded.leased_until "
        "WHERE state = 'pending' AND (leased_until <= ? OR leased_until > ?) RETURNING seq",
        (*(value for seq in seqs for value in (seq, until)), now, until),
    ).fetchall()
    return {int(row[0]) for row in rows}


MARK_DELIVERED = (
    "INSERT INTO outcomes (seq, state, delivered_at, remote_event_id) "
    "VALUES (?3, 'delivered', ?1, ?2) ON CONFLICT (seq) DO UPDATE SET state = 'delivered', "
    "delivered_at = excluded.delivered_at, remote_event_id = excluded.remote_event_id, "
    "leased_until = 0, last_error = NULL WHERE state = 'pending'"
)


def release_one(conn: sqlite3.Connection, seq: int) -> int:
    return int(conn.execute(RELEASE_LEASES + " AND seq = ?", (seq,)).rowcount)
