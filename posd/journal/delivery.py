"""Delivery's side of the journal (`sync.outbox.Outbox`): lease, settle, retry, release, and
the side events (alarms, checkpoints) that go out with the records.

Each takes the normal path (`leasing.py`) and, where a damaged page breaks it, the one around
the damage (`salvage.py`). They commit with `synchronous=NORMAL` where they are bookkeeping
(see `posd.journal.store`), and wait while a payment holds capture priority (`priority.py`).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from posd.journal import checkpoints
from posd.journal.backlog import BacklogBound
from posd.journal.database import Database
from posd.journal.leasing import (
    MARK_DELIVERED,
    QUARANTINE,
    RELEASE_LEASES,
    SEQ,
    Candidate,
    Checked,
    PendingFloor,
    check_candidates,
    due,
    settle_lease,
    would_quarantine,
)
from posd.journal.rows import Unreadable, select_records_with_previous, seq_ceiling, walk_rows
from posd.journal.salvage import Salvage
from sync.outbox import (
    Alarm,
    Checkpoint,
    Delivered,
    Lease,
    OutboxRecord,
    Quarantined,
    SideEvent,
)

log = structlog.get_logger("posd.journal")

RETRY_ONE = (
    "UPDATE outcomes SET state = 'pending', attempts = 0, next_attempt_at = 0, leased_until = 0 "
    "WHERE seq = ? AND state = 'quarantined'"
)
# Retried records are pending again below the floor kept for summaries: lowered at once, and
# the epoch moved so that a lease that read the floor before cannot raise it back.
LOWER_FLOOR = (
    "UPDATE delivery_state SET value = CASE name WHEN 'pending_floor' THEN MIN(value, ?) "
    "ELSE value + 1 END WHERE name IN ('pending_floor', 'floor_epoch')"
)
SCHEDULE_RETRY = (
    "INSERT INTO outcomes (seq, attempts, next_attempt_at, last_error) VALUES (?3, 1, ?1, ?2) "
    "ON CONFLICT (seq) DO UPDATE SET attempts = attempts + 1, "
    "next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error, "
    "leased_until = 0 WHERE state = 'pending'"
)
QUARANTINED_ONLY = "AND o.state = 'quarantined'"
NOT_WRITTEN = "its row cannot be written (a damaged page)"
# Records per delivery transaction. A whole window's lease (hundreds of records) in one
# transaction held the write lock 10-60 ms while a backlog drained (bench/capture_api.py,
# when delivery still wrote the journal); 64 records take well under a millisecond here, and
# the commits cost no fsync, so another writer of delivery's database (the CLI's retry or
# flush) never waits long either.
DELIVERY_WRITE_ROWS = 64


@dataclass(frozen=True)
class RetryReport:
    """What `retry_quarantined` did: how many went back to pending, and those it refused
    (each with the reason a lease would quarantine it again)."""

    returned: int
    refused: tuple[Quarantined, ...]


class Delivery:
    def __init__(
        self,
        db: Database,
        floor: PendingFloor,
        salvage: Salvage,
        backlog: BacklogBound,
        clock: Callable[[], float],
    ) -> None:
        self._db = db
        self._floor = floor
        self._salvage = salvage
        self._backlog = backlog
        self._clock = clock

    def lease(self, limit: int, now: float, lease_seconds: float) -> Lease:
        """Due pending records in seq order, each checked against its stored chain link first.

        A record whose link does not check out (its metadata, nonce, ciphertext or data key
        changed, or its predecessor is gone) is quarantined as `tampered`; one that cannot be
        read at all as `corrupt`. Neither is ever handed out, and neither stops the others.
        """
        self._db.priority.yield_to_capture()
        with self._db.lock:
            void_after = now + lease_seconds
            version = self._db.delivery_version()
            try:
                with self._db.read_lock:
                    candidates: list[Candidate] = due(
                        self._db.reader,
                        self._floor,
                        version,
                        now,
                        limit,
                        void_after,
                        self._salvage.may_lease,
                    )
                damaged: list[Quarantined] = []
            except sqlite3.DatabaseError:  # a damaged page: read around it
                candidates, damaged = self._salvage.due_around_damage(now, limit, void_after)
            checked = check_candidates(candidates)  # before the write lock is taken
            result = self._settle_in_chunks(candidates, checked, now, lease_seconds, damaged)
        for item in damaged:
            self._salvage.quarantine_if_writable(item)
        return result

    def _settle_in_chunks(
        self,
        candidates: Sequence[Candidate],
        checked: Checked,
        now: float,
        lease_seconds: float,
        damaged: list[Quarantined],
    ) -> Lease:
        """`settle_lease` in transactions of `DELIVERY_WRITE_ROWS` records (the refused
        go with the first). Where a damaged page breaks one, the candidates no transaction
        settled yet are settled one by one around it (`Salvage.settle_each`)."""
        records = checked.leased
        if not records and not checked.refused and self._floor.seq == self._floor.kept:
            return Lease([], damaged)  # nothing to write: an idle engine's lease reads only
        leased: list[OutboxRecord] = []
        refused: list[Quarantined] = []
        settled: set[int] = set()
        for start in range(0, max(len(records), 1), DELIVERY_WRITE_ROWS):
            chunk = Checked(
                records[start : start + DELIVERY_WRITE_ROWS], checked.refused if not start else []
            )
            try:
                part: Lease = self._db.write_delivery(
                    functools.partial(
                        settle_lease,
                        checked=chunk,
                        now=now,
                        lease_seconds=lease_seconds,
                        clock=self._clock,
                        floor=None if start else self._floor,
                    )
                )
            except sqlite3.DatabaseError:
                rest = [c for c in candidates if int(c[0][SEQ]) not in settled]
                part = self._salvage.settle_each(rest, now, lease_seconds, [])
                leased.extend(part.records)
                refused.extend(part.quarantined)
                break
            leased.extend(part.records)
            refused.extend(part.quarantined)
            settled.update(record.seq for record in chunk.leased)
            settled.update(item.seq for item in chunk.refused)
        return Lease(leased, [*refused, *damaged])

    def mark_delivered(self, delivered: Sequence[Delivered], now: float) -> None:
        rows = [(now, item.remote_event_id, item.seq) for item in delivered]
        self._settle_rows(MARK_DELIVERED, rows, durable=False)

    def schedule_retry(self, seqs: Sequence[int], next_attempt_at: float, error: str) -> None:
        self._update_rows(
            SCHEDULE_RETRY, [(next_attempt_at, error, seq) for seq in seqs], durable=False
        )

    def quarantine(self, seq: int, reason: str) -> None:
        self._settle_rows(QUARANTINE, [(reason, seq)])

    def _settle_rows(
        self,
        sql: str,
        rows: Sequence[tuple[Any, ...]],
        *,
        durable: bool = True,
    ) -> None:
        """A final state (delivered, quarantined): one the file cannot take is kept in memory
        so this process does not lease the record again."""
        failed = self._update_rows(sql, rows, durable=durable)
        self._salvage.settled(failed)

    def _update_rows(
        self,
        sql: str,
        rows: Sequence[tuple[Any, ...]],
        *,
        durable: bool = True,
    ) -> list[int]:
        """Run `sql` (seq last) for each parameter row, `DELIVERY_WRITE_ROWS` rows to a
        transaction; where a damaged page breaks one, one transaction per row
        (`Salvage.write_each`). Returns the seqs that could not be written."""
        failed: list[int] = []
        for start in range(0, len(rows), DELIVERY_WRITE_ROWS):
            chunk = rows[start : start + DELIVERY_WRITE_ROWS]
            failed.extend(self._update_chunk(sql, chunk, durable))
        return failed

    def _update_chunk(
        self,
        sql: str,
        rows: Sequence[tuple[Any, ...]],
        durable: bool,
    ) -> list[int]:
        self._db.priority.yield_to_capture()

        def each_row(conn: sqlite3.Connection) -> int:
            return int(conn.executemany(sql, rows).rowcount)

        try:
            self._db.write_delivery(each_row, durable=durable)
        except sqlite3.DatabaseError:
            pass
        else:
            self._salvage.rows_written()
            return []
        return self._salvage.write_each(sql, rows, durable=durable)

    def pending_alarms(self, limit: int) -> Sequence[Alarm]:
        with self._db.lock:
            rows = (
                self._db.delivery_connection()
                .execute(
                    "SELECT alarm_id, event_id, kind, seq, detail, raised_at FROM alarms "
                    "WHERE sent_at IS NULL ORDER BY alarm_id LIMIT ?",
                    (limit,),
                )
                .fetchall()
            )
        return [Alarm(*row) for row in rows]

    def pending_side_events(self, limit: int) -> Sequence[SideEvent]:
        alarms = self.pending_alarms(limit)
        if len(alarms) >= limit:
            return alarms
        with self._db.read_lock:
            try:
                return [*alarms, *checkpoints.unsent(self._db.reader, limit - len(alarms))]
            except sqlite3.DatabaseError as error:
                # A damaged page under the checkpoints: the alarms still go out, and verify
                # names the damage (like any other page of the file).
                log.error("journal.checkpoints_unreadable", error=str(error))
                return alarms

    def mark_side_events_sent(self, events: Sequence[SideEvent], now: float) -> None:
        """Alarms and checkpoints accepted by EventBridge; each table in one transaction."""
        alarms = [(now, e.alarm_id) for e in events if isinstance(e, Alarm)]
        cuts = [(now, e.checkpoint_id) for e in events if isinstance(e, Checkpoint)]
        if alarms:
            self._update_rows("UPDATE alarms SET sent_at = ? WHERE alarm_id = ?", alarms)
        if cuts:
            self._update_rows(checkpoints.MARK_SENT, cuts)

    def retry_quarantined(self) -> RetryReport:
        """Return to pending, due now, every quarantined record that would pass the checks a
        lease makes; the others (damaged, tampered, unreadable) stay quarantined and are
        refused with the reason they would be quarantined again."""
        with self._db.lock:
            retry, refused = self.retriable_quarantined()
        returned = len(retry)
        if retry:

            def body(conn: sqlite3.Connection) -> int:
                count = conn.executemany(RETRY_ONE, [(seq,) for seq in retry]).rowcount
                conn.execute(LOWER_FLOOR, (min(retry),))
                self._floor.seq = 0  # under the lock: no lease can move it past these
                return int(count)

            try:
                returned = self._db.write_delivery(body, durable=True)
            except sqlite3.DatabaseError:
                failed = self._salvage.write_each(
                    RETRY_ONE, [(seq,) for seq in retry], durable=True
                )
                with self._db.lock:
                    self._floor.seq = 0
                returned = len(retry) - len(failed)
                refused.extend(Quarantined(seq, NOT_WRITTEN) for seq in failed)
            self._backlog.forget()  # pending again: the backlog bound must start over
        return RetryReport(returned, tuple(sorted(refused, key=lambda item: item.seq)))

    def retriable_quarantined_locked(self) -> tuple[list[int], list[Quarantined]]:
        """`retriable_quarantined` under `Database.lock`."""
        with self._db.lock:
            return self.retriable_quarantined()

    def retriable_quarantined(self) -> tuple[list[int], list[Quarantined]]:
        """The quarantined seqs that would pass a lease's checks, and the rest with why not.
        Reads only; call under `Database.lock`."""
        with self._db.read_lock:
            return self._retriable_quarantined(self._db.reader)

    def _retriable_quarantined(
        self, conn: sqlite3.Connection
    ) -> tuple[list[int], list[Quarantined]]:
        ceiling = seq_ceiling(conn, self._db.issued_through())
        retry: list[int] = []
        refused: list[Quarantined] = []
        walk = walk_rows(conn, 0, ceiling, QUARANTINED_ONLY, select_records_with_previous)
        for row in walk:
            if isinstance(row, Unreadable):
                refused.append(Quarantined(row.seq, f"corrupt record: cannot be read: {row.error}"))
                continue
            reason = would_quarantine(conn, row)
            if reason is None:
                retry.append(int(row["seq"]))
            else:
                refused.append(Quarantined(int(row["seq"]), reason))
        return retry, refused

    def release_leases(self) -> int:
        """Make every leased pending record due to lease again at once; returns how many.

        For a daemon that stopped its delivery: the next start need not wait out the leases.
        """

        def body(conn: sqlite3.Connection) -> int:
            return conn.execute(RELEASE_LEASES).rowcount

        try:
            released: int = self._db.write_delivery(body, durable=True)
        except sqlite3.DatabaseError:
            return self._salvage.release_leases_around_damage()
        return released
