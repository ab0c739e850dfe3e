"""Delivery's own database (`posd.journal.outcomes`): one writer per file.

Capture appends to the journal; delivery writes what became of each record to `delivery.db`.
A delivery transaction holds that file's write lock, never the journal's, so a payment's
append does not wait on it, however long it lasts. What a journal written before this file
existed kept in its own columns is carried over once; a file of another journal is set aside.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from posd.journal import JOURNAL_FILE, Journal
from posd.journal.files import DELIVERY_FILE
from posd.recorder import Recorder
from sync.outbox import Delivered
from tests.cards import VISA_TEST_PAN, payment_meta, payment_secret
from tests.conftest import query_file

LEASE = 30.0
HOLD_S = 3.0  # how long the other process keeps delivery's write lock
CHILD_TIMEOUT_S = 30.0
# An append waits for no delivery transaction: it is over long before the hold ends.
APPEND_BOUND_S = HOLD_S / 2

HOLD_DELIVERY_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE delivery_state SET value = value WHERE name = 'floor_epoch'")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def capture(recorder: Recorder, count: int) -> list[int]:
    meta, secret = payment_meta(VISA_TEST_PAN), payment_secret(VISA_TEST_PAN)
    return [recorder.record("card_payment", meta, secret).seq for _ in range(count)]


def test_an_append_never_waits_on_a_delivery_transaction_in_another_process(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    capture(recorder, 1)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DELIVERY_LOCK, str(state_dir / DELIVERY_FILE), str(HOLD_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        capture(recorder, 3)
        appended_in = time.monotonic() - started
        assert holder.poll() is None  # still holding delivery's lock
    finally:
        holder.wait(CHILD_TIMEOUT_S)
    assert appended_in < APPEND_BOUND_S, appended_in
    assert journal.summary().pending == 4


def test_delivery_writes_only_its_own_database(recorder: Recorder, journal: Journal) -> None:
    capture(recorder, 5)
    writer = journal.inspection.writer
    statements: list[str] = []
    writer.set_trace_callback(statements.append)
    try:
        lease = journal.lease(10, time.time(), LEASE)
        journal.mark_delivered([Delivered(r.seq, f"eb-{r.seq}") for r in lease.records[:3]], 0)
        journal.schedule_retry([lease.records[3].seq], 0, "throttled")
        journal.quarantine(lease.records[4].seq, "tampered: test")
        journal.retry_quarantined()
        journal.release_leases()
    finally:
        writer.set_trace_callback(None)
    assert statements == []  # not one statement on the journal's connection
    summary = journal.summary()
    assert (summary.pending, summary.delivered, summary.quarantined) == (2, 3, 0)


LEGACY = (
    "UPDATE records SET state = 'delivered', delivered_at = 5, remote_event_id = 'eb' "
    "WHERE seq IN (1, 2)",
    "UPDATE records SET state = 'quarantined', last_error = 'tampered: old' WHERE seq = 3",
    "UPDATE records SET attempts = 2, next_attempt_at = 9e9, last_error = 'throttled' "
    "WHERE seq = 4",
    "INSERT INTO alarms (event_id, kind, seq, detail, raised_at) "
    "VALUES ('a-1', 'tampered', 3, 'old', '2026-01-01T00:00:00Z')",
)


def test_a_journal_from_before_the_split_carries_its_delivery_state_over(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    """What a v5 journal kept in its own columns (delivered, quarantined, a retry schedule,
    an alarm) is what delivery's new database starts from: nothing delivered goes again."""
    capture(recorder, 6)
    journal.close()
    (state_dir / DELIVERY_FILE).unlink()
    conn = sqlite3.connect(state_dir / JOURNAL_FILE, isolation_level=None)
    for statement in LEGACY:
        conn.execute(statement)
    conn.close()
    with Journal.open(state_dir) as reopened:
        summary = reopened.summary()
        assert (summary.pending, summary.delivered, summary.quarantined) == (3, 2, 1)
        assert summary.tampered == 1
        assert [r.seq for r in reopened.lease(10, time.time(), LEASE).records] == [5, 6]
        assert [a.seq for a in reopened.pending_alarms(10)] == [3]
        assert query_file(reopened, "SELECT attempts FROM delivery.outcomes WHERE seq = 4") == [
            (2,)
        ]


def test_a_delivery_database_of_another_journal_is_set_aside(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    capture(recorder, 2)
    lease = journal.lease(10, time.time(), LEASE)
    journal.mark_delivered([Delivered(r.seq, "eb") for r in lease.records], time.time())
    journal.close()
    other = sqlite3.connect(state_dir / DELIVERY_FILE, isolation_level=None)
    other.execute("UPDATE delivery_state SET value = 'another' WHERE name = 'journal_id'")
    other.close()
    with Journal.open(state_dir) as reopened:
        # What the journal's own columns say (nothing delivered): sent again, at least once.
        assert reopened.summary().pending == 2
    assert len(list(state_dir.glob(f"{DELIVERY_FILE}.*.aside"))) == 1


def test_another_process_sees_the_backlog_delivery_leaves(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    """Capture's summaries (offline limits) scan from the pending floor delivery keeps; a
    retry by another process lowers it, and a lease that read the floor before cannot raise
    it back over the retried records."""
    capture(recorder, 10)
    with Journal.open(state_dir) as delivery:
        lease = delivery.lease(10, time.time(), LEASE)
        delivery.quarantine(2, "corrupt record: test")
        done = [Delivered(r.seq, "eb") for r in lease.records if r.seq != 2]
        delivery.mark_delivered(done[:6], time.time())  # 1, 3..7
        delivery.lease(10, time.time() + 2 * LEASE, LEASE)  # keeps the floor (8)
        assert query_file(
            delivery, "SELECT value FROM delivery.delivery_state WHERE name = 'pending_floor'"
        ) == [(8,)]
        assert journal.summary().pending == 3  # 8, 9, 10
        assert journal.retry_quarantined() == 1  # "another process": the CLI
        assert journal.summary().pending == 4
        delivery.lease(10, time.time() + 4 * LEASE, LEASE)
        assert journal.summary().pending == 4
