"""Capture before delivery: the backlog's free upper bound, summaries beside writes, and the
outbox's writes waiting while a payment holds priority (real journal, real threads)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from posd.journal import Journal
from posd.journal.backlog import BacklogBound
from posd.journal.database import Database
from posd.journal.files import FILE_MODE, PRIORITY_FILE
from posd.journal.priority import CapturePriority, SharedHoldFlag
from posd.journal.store import CAPTURE_PRIORITY_WINDOW_SECONDS
from posd.recorder import Recorder
from sync.outbox import Delivered, OutboxSummary
from tests.cards import VISA_TEST_PAN, payment_meta, payment_secret
from tests.repo import REPO_ROOT

REPO = REPO_ROOT
LEASE = 30.0
WINDOW_S = 0.3
WAIT_S = 5.0
HELD_S = 0.05  # a payment's hold, shorter than the window


def capture(recorder: Recorder, count: int, amount: int = 1000) -> list[int]:
    meta = payment_meta(VISA_TEST_PAN, amount)
    return [
        recorder.record("card_payment", meta, payment_secret(VISA_TEST_PAN)).seq
        for _ in range(count)
    ]


def deliver(journal: Journal, count: int) -> None:
    lease = journal.lease(count, time.time(), LEASE)
    journal.mark_delivered(
        [Delivered(r.seq, f"remote-{r.seq}") for r in lease.records], time.time()
    )


def test_no_bound_before_a_summary(journal: Journal, recorder: Recorder) -> None:
    capture(recorder, 2)
    assert journal.backlog_bound() is None


def test_the_bound_adds_appends_since_the_last_summary(
    journal: Journal, recorder: Recorder
) -> None:
    capture(recorder, 3, amount=500)
    first = journal.summary()
    capture(recorder, 2, amount=700)
    bound = journal.backlog_bound()
    assert bound is not None
    exact = journal.summary()
    assert bound.pending == exact.pending == 5
    assert bound.pending_amount_by_currency == exact.pending_amount_by_currency == {"EUR": 2900}
    assert bound.oldest_pending_captured_at == first.oldest_pending_captured_at


def test_the_bound_is_never_below_the_truth_and_deliveries_show_at_the_next_summary(
    journal: Journal, recorder: Recorder
) -> None:
    capture(recorder, 4)
    journal.summary()
    deliver(journal, 3)
    capture(recorder, 1)
    bound = journal.backlog_bound()
    assert bound is not None
    assert bound.pending == 5  # the three delivered still counted: too high, never too low
    exact = journal.summary()
    assert exact.pending == 2
    again = journal.backlog_bound()
    assert again is not None
    assert again.pending == 2


def test_returning_quarantined_records_drops_the_bound(
    journal: Journal, recorder: Recorder
) -> None:
    seqs = capture(recorder, 2)
    journal.quarantine(seqs[0], "test")
    journal.summary()
    assert journal.retry_quarantined() == 1
    assert journal.backlog_bound() is None  # the bound would have missed the returned record
    assert journal.summary().pending == 2


def test_a_stale_snapshot_gives_no_bound() -> None:
    now = [100.0]
    bound = BacklogBound(max_age_seconds=2.0, clock=lambda: now[0])
    bound.observed(OutboxSummary(1, 0, 0, "2026-01-01T00:00:00Z", {"EUR": 5}), 1, now[0])
    bound.appended(2, {"currency": "EUR", "amount": 10}, "2026-01-01T00:00:01Z")
    assert bound.bound() == OutboxSummary(2, 0, 0, "2026-01-01T00:00:00Z", {"EUR": 15})
    now[0] += 2.5
    assert bound.bound() is None


def test_a_summary_read_before_an_append_keeps_it_on_top() -> None:
    """The append committed after the summary's read but was noted before it was installed."""
    bound = BacklogBound(max_age_seconds=5.0)
    bound.observed(OutboxSummary(0, 0, 0, None, {}), 0, time.monotonic())
    taken_at = time.monotonic()
    bound.appended(1, {"currency": "EUR", "amount": 10}, "2026-01-01T00:00:01Z")
    bound.appended(2, {"currency": "EUR", "amount": 20}, "2026-01-01T00:00:02Z")
    bound.observed(OutboxSummary(1, 0, 0, "2026-01-01T00:00:01Z", {"EUR": 10}), 1, taken_at)
    assert bound.bound() == OutboxSummary(2, 0, 0, "2026-01-01T00:00:01Z", {"EUR": 30})


def test_a_summary_does_not_wait_for_the_writer(journal: Journal, recorder: Recorder) -> None:
    """Summaries read on their own connection: a long write transaction does not hold them."""
    capture(recorder, 3)
    got: list[int] = []
    with journal.inspection.lock:  # what a lease or a settlement holds for its whole transaction
        reader = threading.Thread(target=lambda: got.append(journal.summary().pending))
        reader.start()
        reader.join(WAIT_S)
        assert not reader.is_alive()
    assert got == [3]


def test_delivery_waits_while_a_capture_holds_priority(
    journal: Journal, recorder: Recorder
) -> None:
    capture(recorder, 2)
    leased_at: list[float] = []

    def lease() -> None:
        journal.lease(10, time.time(), LEASE)
        leased_at.append(time.monotonic())

    with journal.capture_priority():
        held = time.monotonic()
        delivery = threading.Thread(target=lease)
        delivery.start()
        delivery.join(CAPTURE_PRIORITY_WINDOW_SECONDS / 3)
        assert delivery.is_alive()  # waiting for the payment
        capture(recorder, 1)  # the payment's own append is not held back
        released = time.monotonic()
    delivery.join(WAIT_S)
    # after the payment, or after the window if the append outlasted it (a busy machine)
    assert leased_at
    assert leased_at[0] >= min(released, held + CAPTURE_PRIORITY_WINDOW_SECONDS)


def test_priority_lasts_the_window_at_most() -> None:
    priority = CapturePriority(WINDOW_S)
    with priority.hold():
        waited = priority.yield_to_capture()
    assert WINDOW_S * 0.9 <= waited < WAIT_S
    assert priority.yield_to_capture() == 0.0


SETTLE_AND_DIE = """
import os, signal, sys, time
from pathlib import Path
from posd.journal import Journal
from sync.outbox import Delivered
journal = Journal.open(Path(sys.argv[1]))
lease = journal.lease(100, time.time(), 30.0)
journal.mark_delivered([Delivered(r.seq, "remote") for r in lease.records], time.time())
print(len(lease.records), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_settlements_without_fsync_survive_the_process_being_killed(
    journal: Journal, recorder: Recorder, state_dir: Path
) -> None:
    """Settlements skip the fsync (a power cut may undo the latest), not the commit."""
    capture(recorder, 4)
    child = subprocess.run(
        [sys.executable, "-c", SETTLE_AND_DIE, str(state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.split() == ["4"]
    with Journal.open_read_only(state_dir) as reopened:
        summary = reopened.summary()
    assert (summary.delivered, summary.pending) == (4, 0)
    assert journal.durability()["synchronous"] == "full"  # appends still wait for the disk


def test_a_write_begun_while_another_process_holds_priority_gives_way(
    journal: Journal, recorder: Recorder
) -> None:
    """Delivery looks at the shared flag before it begins a write; a payment's hold published
    between that look and its BEGIN IMMEDIATE must still go first: the write, begun, sees the
    hold and lets go of the lock before doing anything."""
    capture(recorder, 1)
    state_dir = journal.path.parent
    shared = SharedHoldFlag(state_dir / PRIORITY_FILE, FILE_MODE)
    other = Database(
        journal.path,
        read_only=False,
        identity=None,
        priority=CapturePriority(CAPTURE_PRIORITY_WINDOW_SECONDS, shared=shared),
    )
    order: list[str] = []
    try:
        with journal.capture_priority():
            writer = threading.Thread(target=lambda: other.write(lambda _: order.append("other")))
            writer.start()
            time.sleep(HELD_S)
            order.append("capture")
        writer.join(WAIT_S)
    finally:
        other.writer.close()
        other.reader.close()
        shared.close()
    assert order == ["capture", "other"]
