"""Around a damaged page: every slow path the journal takes where SQLite cannot read or write
part of the file, in one place to audit.

The rule everywhere: what can be read is delivered, what can be written is written, and what
the file cannot record is remembered by this process instead (`Salvage`): rows it cannot read
(refused once, as `corrupt`), leases it cannot write (held in memory: delivered once by this
process, sent again, at least once, if it stops first), and settlements it cannot write
(delivered, quarantined: never leased again by this process). Nothing captured is lost by
taking these paths; at worst a record is sent twice with its `event_id`. `delivery.py` and
`counts.py` take the normal path first and come here when a `sqlite3.DatabaseError` breaks it.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from posd.journal.database import Database
from posd.journal.leasing import (
    QUARANTINE,
    Candidate,
    PendingFloor,
    check_candidates,
    lease_problem,
    release_one,
    settle_lease,
)
from posd.journal.rows import (
    RecordState,
    Unreadable,
    outbox_record,
    pending_amount,
    seq_ceiling,
    walk_rows,
)
from posd.ratelog import RepeatedErrors
from sync.outbox import TAMPERED_PREFIX, Lease, OutboxRecord, OutboxSummary, Quarantined

RELEASE_AROUND_DAMAGE_ROWS = 10_000  # a bound on row-by-row work at shutdown
ROWS_NOT_WRITTEN = "journal.damaged_rows_not_written"

log = structlog.get_logger("posd.journal")


class Salvage:
    """What this process knows better than the damaged file, and the paths around damage."""

    def __init__(self, db: Database, floor: PendingFloor, clock: Callable[[], float]) -> None:
        self._db = db
        self._floor = floor
        self._clock = clock
        self._unreadable: set[int] = set()
        self._memory_leases: dict[int, float] = {}
        self._settled_in_memory: set[int] = set()
        # A full disk fails every settle of every delivery round (once a second): logged
        # once with its cause, then summarised (posd.ratelog).
        self._write_failures = RepeatedErrors(clock=clock, logger=log, level="error")

    def may_lease(self, seq: int, now: float) -> bool:
        """False for what this process already knows better than the damaged file."""
        if seq in self._unreadable or seq in self._settled_in_memory:
            return False
        return self._memory_leases.get(seq, 0.0) <= now

    # -- lease ---------------------------------------------------------------------------------

    def due_around_damage(
        self, now: float, limit: int, void_after: float
    ) -> tuple[list[Candidate], list[Quarantined]]:
        """Lease's slow path: every due row that can be read (with the chain value to check it
        against, None where the row before it cannot be read), and each unreadable row
        refused once (this process remembers it). Reads only, outside any transaction."""
        with self._db.read_lock:
            return self._due_around_damage(self._db.reader, now, limit, void_after)

    def _due_around_damage(
        self, conn: sqlite3.Connection, now: float, limit: int, void_after: float
    ) -> tuple[list[Candidate], list[Quarantined]]:
        rows: list[Candidate] = []
        refused: list[Quarantined] = []
        floor = self._floor.find(conn, self._db.delivery_version())
        previous: tuple[int, bytes] | None = None
        walk = walk_rows(conn, floor - 1, seq_ceiling(conn, self._db.issued_through()))
        for row in walk:
            if isinstance(row, Unreadable):
                previous = None
                if row.seq not in self._unreadable:
                    self._unreadable.add(row.seq)
                    refused.append(Quarantined(row.seq, f"corrupt record: {row.error}"))
                continue
            seq = int(row["seq"])
            link = previous[1] if previous and previous[0] == seq - 1 else None
            previous = (seq, bytes(row["chain"]))
            if row["state"] != RecordState.PENDING or not self.may_lease(seq, now):
                continue
            leased_until = row["leased_until"]
            lease_over = leased_until <= now or leased_until > void_after
            if row["next_attempt_at"] <= now and lease_over:
                rows.append((row, link))
            if len(rows) >= limit:
                break
        return rows, refused

    def settle_each(
        self,
        candidates: list[Candidate],
        now: float,
        lease_seconds: float,
        damaged: list[Quarantined],
    ) -> Lease:
        """`settle_lease` one row per transaction: around a damaged page, a transaction that
        writes several rows can fail as a whole. A row that cannot be written is refused."""
        records: list[OutboxRecord] = []
        refused: list[Quarantined] = []
        for candidate in candidates:
            try:
                one: Lease = self._db.write_delivery(
                    functools.partial(
                        settle_lease,
                        checked=check_candidates([candidate]),
                        now=now,
                        lease_seconds=lease_seconds,
                        clock=self._clock,
                    )
                )
            except sqlite3.DatabaseError:
                one = self._settle_lease_in_memory(candidate, now + lease_seconds)
            records.extend(one.records)
            refused.extend(one.quarantined)
        return Lease(records, [*refused, *damaged])

    def _settle_lease_in_memory(self, candidate: Candidate, until: float) -> Lease:
        """A readable record whose lease cannot be written is leased in memory: delivered
        once by this process, and sent again (at least once) if this process stops first."""
        row, link = candidate
        seq = int(row["seq"])
        reason = lease_problem(row, link)
        if reason is None:
            try:
                record = outbox_record(row)
            except (ValueError, KeyError, TypeError) as error:
                reason = f"corrupt record: {error}"
            else:
                self._memory_leases[seq] = until
                return Lease([record])
        self._settled_in_memory.add(seq)
        return Lease([], [Quarantined(seq, reason)])

    def quarantine_if_writable(self, item: Quarantined) -> None:
        """Mark an unreadable record quarantined in its own transaction, if its page can still
        be written (often it cannot; `_unreadable` keeps it out of this process's leases)."""
        with contextlib.suppress(sqlite3.DatabaseError):
            self._db.write_delivery(
                lambda conn: conn.execute(QUARANTINE, (item.reason, item.seq)), durable=True
            )

    # -- settle --------------------------------------------------------------------------------

    def write_each(self, sql: str, rows: Sequence[tuple[Any, ...]], *, durable: bool) -> list[int]:
        """Run `sql` (seq last) one transaction per parameter row, where a damaged page broke
        the one transaction for all, so every row that can be written is. Returns the seqs
        that could not be written (their effect is lost: a delivered record not marked is
        sent again later, at least once, never lost)."""
        failed: list[int] = []
        cause = ""
        for row in rows:
            try:
                self._db.write_delivery(
                    functools.partial(_execute, sql=sql, parameters=row), durable=durable
                )
            except sqlite3.DatabaseError as error:
                failed.append(int(row[-1]))
                cause = str(error)
        if failed:
            self._write_failures.failed(
                ROWS_NOT_WRITTEN, seqs=failed[:20], count=len(failed), error=cause
            )
        else:
            self.rows_written()
        return failed

    def rows_written(self) -> None:
        """A settle the file took: a streak of failed writes (a full disk) has ended."""
        self._write_failures.recovered(ROWS_NOT_WRITTEN)

    def settled(self, failed: Sequence[int]) -> None:
        """A final state (delivered, quarantined) the file could not take for `failed`: kept
        in memory, so this process does not lease those records again."""
        with self._db.lock:
            self._settled_in_memory.update(failed)
            for seq in failed:
                self._memory_leases.pop(seq, None)

    def release_leases_around_damage(self) -> int:
        """`release_leases` row by row from the lowest pending seq known, where a damaged page
        broke the one statement (found by a chaos test: SIGTERM then exited 1 with a
        traceback). Leases kept in memory (rows the file could not update) are dropped; rows
        that cannot be written, and any beyond the first `RELEASE_AROUND_DAMAGE_ROWS`, keep
        their lease in the file: it runs out by itself."""
        with self._db.lock:
            first, last = self._floor.seq, self._db.issued_through()
            in_memory = len(self._memory_leases)  # leases the damaged file could not take
            self._memory_leases.clear()
        if last is None:
            return in_memory
        released, kept = in_memory, 0
        for seq in range(first, min(last, first + RELEASE_AROUND_DAMAGE_ROWS) + 1):
            try:
                released += self._db.write_delivery(functools.partial(release_one, seq=seq))
            except sqlite3.DatabaseError:
                kept += 1
        log.warning("journal.leases_released_around_damage", released=released, kept=kept)
        return released

    # -- counts --------------------------------------------------------------------------------

    def summary_around_damage(self) -> OutboxSummary:
        """The summary from every row that can still be read (a damaged page broke the
        aggregate queries); rows that cannot be read are counted as `unreadable`. Call under
        `Database.lock`."""
        with self._db.read_lock:
            return self._summary_around_damage(self._db.reader)

    def _summary_around_damage(self, conn: sqlite3.Connection) -> OutboxSummary:
        counts: dict[str, int] = {}
        amounts: dict[str, int] = {}
        oldest: str | None = None
        unreadable = tampered = 0
        for row in walk_rows(conn, 0, seq_ceiling(conn, self._db.issued_through())):
            if isinstance(row, Unreadable):
                unreadable += 1
                continue
            state = str(row["state"])
            if state == RecordState.PENDING and int(row["seq"]) in self._settled_in_memory:
                continue  # settled by this process; the damaged file could not record it
            counts[state] = counts.get(state, 0) + 1
            if state == RecordState.QUARANTINED and str(row["last_error"] or "").startswith(
                TAMPERED_PREFIX
            ):
                tampered += 1
            if state == RecordState.PENDING:
                oldest = oldest or row["captured_at"]
                currency, amount = pending_amount(row["meta"])
                if currency is not None:
                    amounts[currency] = amounts.get(currency, 0) + amount
        return OutboxSummary(
            pending=counts.get(RecordState.PENDING, 0),
            quarantined=counts.get(RecordState.QUARANTINED, 0),
            delivered=counts.get(RecordState.DELIVERED, 0),
            oldest_pending_captured_at=oldest,
            pending_amount_by_currency=amounts,
            tampered=tampered,
            unreadable=unreadable,
        )


def _execute(conn: sqlite3.Connection, sql: str, parameters: tuple[Any, ...]) -> None:
    conn.execute(sql, parameters)
