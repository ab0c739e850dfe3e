"""The durable, encrypted, hash-chained journal of captured records (SQLite).

Durability: WAL with `synchronous=FULL`, one transaction per append: when `append` returns,
the record survives a crash or power loss. `secure_delete=ON` overwrites purged card data.
Delivery's bookkeeping (leases, delivered marks, retry schedules) is in a database of its own
(`outcomes.py`, `delivery.db`), committed with `synchronous=NORMAL`: it survives a crash of
the process, and a power cut can only undo the last few of these commits. Undone, a lease or
a delivered mark means the record is sent again with its `event_id`: at least once, as after
any lost answer; nothing captured is ever at stake. It spares the drain an fsync per round
(bench/drain.py), and since it is another file, a payment's append never waits on it.
The journal satisfies `sync.outbox.Outbox`, so the sync engine can lease and settle records
without knowing anything else about it. Writers from other processes (the CLI) coordinate
through SQLite's locks and `busy_timeout`; within a process one `Journal` is thread-safe.

`Journal` is the front over parts that each do one job and share one `Database`: see the
package docstring. The hot paths (append, lease, settle) are plain `sqlite3` with hand-written
SQL: each costs an fsync already, and the Python around it is a measured share of capture
latency (bench/journal_append.py). sqlite-utils defines the schema (`schema.py`) and answers
the read-only inspection queries (`stats`), where convenience matters more than microseconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from posd.errors import JournalError, JournalFullError, UsageError
from posd.journal import checkpoints, counts, reading, retention
from posd.journal.appending import Appender, observe_last_event_id
from posd.journal.backlog import BacklogBound
from posd.journal.damage import DamagedPage, assess
from posd.journal.database import Database, Inspection
from posd.journal.delivery import Delivery, RetryReport
from posd.journal.files import (
    FILE_MODE,
    JOURNAL_FILE,
    PRIORITY_FILE,
    prepare_state_dir,
    size_on_disk,
)
from posd.journal.identity import (
    AcceptedLoss,
    Identity,
    IdentityFile,
    JournalIdentityError,
    accept_gap,
    establish,
    last_seq,
    readable_journal_id,
    set_aside,
    start_new_journal,
)
from posd.journal.leasing import PendingFloor
from posd.journal.permissions import check_access
from posd.journal.priority import CapturePriority, SharedHoldFlag
from posd.journal.salvage import Salvage
from posd.journal.settings import JournalSettings
from posd.journal.verify import VerifyReport
from posd.journal.waits import WaitFigures
from sync.outbox import (
    Alarm,
    Delivered,
    Lease,
    OutboxRecord,
    OutboxSummary,
    SideEvent,
)

# Capture's offline limits use the last summary plus this process's appends since, while that
# summary is at most this old (the sync engine takes one every second): see backlog.py.
BACKLOG_BOUND_MAX_AGE_SECONDS = 3.0
# How long a payment holds delivery's journal writes back at most (see priority.py): longer
# than a capture with a card already at hand, far shorter than a shopper looking for theirs.
CAPTURE_PRIORITY_WINDOW_SECONDS = 0.25


class Journal:
    """One journal file. Use `Journal.open(state_dir, settings)` or `Journal.open_read_only`;
    close it (or use `with`)."""

    def __init__(
        self,
        path: Path,
        settings: JournalSettings,
        *,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
        identity: IdentityFile | None = None,
    ) -> None:
        """Prefer `open`/`open_read_only`. With an `identity` (the state dir had a journal), a
        database without a schema is refused instead of being made anew."""
        self.path = path
        self.read_only = read_only
        self.settings = settings
        self._clock = clock
        backlog = self._backlog = BacklogBound(BACKLOG_BOUND_MAX_AGE_SECONDS)
        shared = None if read_only else SharedHoldFlag(path.parent / PRIORITY_FILE, FILE_MODE)
        priority = CapturePriority(CAPTURE_PRIORITY_WINDOW_SECONDS, shared=shared)
        db = self._db = Database(path, read_only=read_only, identity=identity, priority=priority)
        floor = PendingFloor()
        salvage = Salvage(db, floor, clock)
        self._counts = counts.Counts(db, backlog, salvage)
        self._appender = Appender(db, settings, clock, backlog)
        # `append(kind=, meta=, store_id=, terminal_id=, data_key=, seal=, client_ref=)`: seal
        # and append one record in one durable transaction; returns it as stored. The
        # appender's own method, so a payment goes through no extra layer.
        self.append = self._appender.append
        self._delivery = Delivery(db, floor, salvage, backlog, clock)

    @classmethod
    def open(
        cls,
        state_dir: Path,
        settings: JournalSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> Journal:
        """Open (creating and migrating if needed) the journal of `state_dir` for writing.

        Raises `JournalIdentityError` if the database is not the journal this state dir had
        (emptied, replaced, or missing committed records): see `posd.journal.identity`.
        """
        prepare_state_dir(state_dir)
        check_access(state_dir)  # a file owned by another user is fixed by chown, not reset
        known = IdentityFile.load(state_dir)
        journal = cls(
            state_dir / JOURNAL_FILE, settings or JournalSettings(), clock=clock, identity=known
        )
        try:
            with journal._db.lock:
                journal._db.identity = establish(journal._db.writer, state_dir, known)
                journal._db.adopt_journal_id()
                observe_last_event_id(journal._db.writer)
        except BaseException:
            journal.close()
            raise
        return journal

    @classmethod
    def accept_loss(cls, state_dir: Path) -> AcceptedLoss:
        """`posd journal reset --accept-loss`: make the state dir's journal usable again after
        damage, giving up what is gone and never reusing a seq. What is left is kept: a
        replaced file is set aside (renamed, not deleted), a shortened one keeps its records."""
        prepare_state_dir(state_dir)
        check_access(state_dir)  # never give records up for what a chown fixes
        known = IdentityFile.load(state_dir)
        if known is None:
            raise UsageError(f"{state_dir} has no journal identity to reconcile (nothing to reset)")
        issued = known.identity.high_water_seq
        path = state_dir / JOURNAL_FILE
        try:
            with cls.open(state_dir) as journal:
                found = journal._damaged_page()
                if found is None:
                    return AcceptedLoss("none", journal.journal_id, None, None, None)
                issued = max(issued, journal._db.issued_through() or 0)
        except JournalIdentityError:
            found = None
        if found is not None:
            refusal = found.still_deliverable(path)
            if refusal is not None:
                raise refusal
            return cls._set_damaged_file_aside(state_dir, found, issued)
        kept_id = readable_journal_id(path)
        if kept_id == known.identity.journal_id:
            with cls(path, JournalSettings()) as journal, journal._db.lock:
                after = last_seq(journal._db.writer)
                accept_gap(journal._db.writer, after, issued)
            return AcceptedLoss("gap_accepted", kept_id, after, issued, None)
        aside = set_aside(state_dir) if path.exists() and path.stat().st_size else None
        with cls(path, JournalSettings()) as journal, journal._db.lock:
            journal_id = start_new_journal(journal._db.writer, issued)
        IdentityFile.create(state_dir, Identity(journal_id, issued))
        return AcceptedLoss("new_journal", journal_id, None, None, str(aside) if aside else None)

    def _damaged_page(self) -> DamagedPage | None:
        """The damage `reset` acts on: a page SQLite cannot read (None for a sound file)."""
        retriable, _ = self._delivery.retriable_quarantined_locked()
        summary = self.summary()
        with self._db.lock:
            return assess(self._db.writer, summary, len(retriable))

    @classmethod
    def _set_damaged_file_aside(
        cls, state_dir: Path, found: DamagedPage, issued: int
    ) -> AcceptedLoss:
        """A damaged file whose every readable record was delivered: kept aside (renamed),
        and a new journal starts after the last seq ever issued."""
        aside = set_aside(state_dir)
        path = state_dir / JOURNAL_FILE
        with cls(path, JournalSettings()) as journal, journal._db.lock:
            journal_id = start_new_journal(journal._db.writer, issued)
        IdentityFile.create(state_dir, Identity(journal_id, issued))
        return AcceptedLoss(
            "damaged_set_aside",
            journal_id,
            None,
            None,
            str(aside),
            unreadable=found.unreadable,
            quarantined=found.quarantined,
        )

    @property
    def journal_id(self) -> str:
        """The journal's identity: random, made once, carried in every event."""
        return self._db.journal_id()

    @classmethod
    def open_read_only(cls, state_dir: Path, settings: JournalSettings | None = None) -> Journal:
        """For inspection (stats, verify): never creates, migrates or changes anything."""
        path = state_dir / JOURNAL_FILE
        if not path.is_file():
            raise JournalError(f"no journal in {state_dir} (expected {JOURNAL_FILE})")
        return cls(path, settings or JournalSettings(), read_only=True)

    def durability(self) -> dict[str, Any]:
        """The durability settings in force on this connection (for status and tests)."""
        return self._db.durability()

    @property
    def inspection(self) -> Inspection:
        """For tests and benchmarks only: the connections and the lock (see `Inspection`)."""
        return self._db.inspection()

    def close(self) -> None:
        db = self._db
        with db.lock, db.read_lock:
            db.reader.close()
            self._appender.close_open_key()
            db.writer.close()
            if db.outcomes is not None:
                db.outcomes.close()
            if db.identity is not None:
                db.identity.close()
            db.priority.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- capture -------------------------------------------------------------------------------

    def capture_priority(self) -> contextlib.AbstractContextManager[None]:
        """Hold delivery's writes (lease, settle, purge) back during a payment: priority.py."""
        return self._db.priority.hold()

    def now(self) -> float:
        """The wall time of this journal's clock: what records are stamped with, so what
        their ages are measured against (a rehearsal's simulated clock, sync/clock.py)."""
        return self._clock()

    def size_on_disk(self) -> int:
        return size_on_disk(self.path)

    def append_waits(self) -> WaitFigures:
        """How long this process's appends waited for the write lock (waits.py)."""
        return self._appender.waits.figures()

    def space_problem(self) -> str | None:
        """Why an append would now be refused for space (cap or disk reserve), or None."""
        return self._appender.space_problem()

    def space_refusal(self) -> JournalFullError | None:
        """The error an append would now raise for space (its `code` says which), or None."""
        return self._appender.space_refusal()

    def cut_checkpoint(self, now: float, force: bool = False) -> bool:
        """The checkpoint timer (see `sync.outbox.Outbox.cut_checkpoint`)."""
        return self._appender.cut_checkpoint(now, force)

    def find_by_client_ref(self, client_ref: str) -> OutboxRecord | None:
        return reading.find_by_client_ref(self._db, client_ref)

    def records(self, after_seq: int = 0, batch: int = 500) -> Iterator[OutboxRecord]:
        """Every record still holding its payload, in seq order (read-only)."""
        return reading.records(self._db, after_seq, batch)

    # -- outbox (sync.outbox.Outbox) -----------------------------------------------------------

    def lease(self, limit: int, now: float, lease_seconds: float) -> Lease:
        return self._delivery.lease(limit, now, lease_seconds)

    def mark_delivered(self, delivered: Sequence[Delivered], now: float) -> None:
        self._delivery.mark_delivered(delivered, now)

    def schedule_retry(self, seqs: Sequence[int], next_attempt_at: float, error: str) -> None:
        self._delivery.schedule_retry(seqs, next_attempt_at, error)

    def quarantine(self, seq: int, reason: str) -> None:
        self._delivery.quarantine(seq, reason)

    def retry_quarantined(self) -> int:
        """Return every quarantined record that would now pass a lease's checks to pending
        (see `retry_quarantined_report`); returns how many."""
        return self._delivery.retry_quarantined().returned

    def retry_quarantined_report(self) -> RetryReport:
        """`retry_quarantined`, with the records it refused and why (damaged, tampered or
        unreadable ones would only be quarantined again)."""
        return self._delivery.retry_quarantined()

    def release_leases(self) -> int:
        return self._delivery.release_leases()

    def summary(self) -> OutboxSummary:
        return self._counts.summary()

    def backlog_bound(self) -> OutboxSummary | None:
        """At least the backlog the exact `summary` would show (pending count, amounts, oldest
        pending), at no cost; None without a recent summary to start from (see backlog.py)."""
        return self._backlog.bound()

    def pending_side_events(self, limit: int) -> Sequence[SideEvent]:
        return self._delivery.pending_side_events(limit)

    def pending_alarms(self, limit: int) -> Sequence[Alarm]:
        return self._delivery.pending_alarms(limit)

    def mark_side_events_sent(self, events: Sequence[SideEvent], now: float) -> None:
        self._delivery.mark_side_events_sent(events, now)

    # -- retention -----------------------------------------------------------------------------

    def purge_delivered(self, delivered_before: float, through_seq: int | None = None) -> int:
        """Erase delivered records older than `delivered_before` (and at or below
        `through_seq`, when given), `PURGE_CHUNK_ROWS` seqs a transaction (`purge_in_chunks`).
        Returns how many were erased."""
        return self.purge_in_chunks(delivered_before, retention.PURGE_CHUNK_ROWS, through_seq)

    def purge_in_chunks(
        self, delivered_before: float, chunk_rows: int, through_seq: int | None = None
    ) -> int:
        """Erase delivered records older than `delivered_before` (and at or below
        `through_seq`, when given), `chunk_rows` seqs a short transaction (see
        `retention.purge_in_chunks`). Returns how many were erased."""
        return retention.purge_in_chunks(self._db, delivered_before, chunk_rows, through_seq)

    # -- inspection ----------------------------------------------------------------------------

    def verify(self, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Check structure, the chain and every ciphertext's integrity, without decrypting."""
        return reading.verify(self._db, progress)

    def stats(self) -> dict[str, Any]:
        """Counts, bounds, backlog and size, for `posd journal stats` (read-only queries)."""
        return counts.stats(self._db, self._clock, self.settings.max_bytes, self.checkpoint_status)

    def checkpoint_status(self) -> checkpoints.CheckpointStatus:
        """The last checkpoint's end and how many wait to be sent (for status and metrics)."""
        return reading.checkpoint_status(self._db)
