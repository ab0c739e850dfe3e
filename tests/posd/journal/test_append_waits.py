"""A payment's append and the journal's write lock held by another connection (as the
delivery daemon's, in its own process): the append begins as soon as the lock is free, not on
SQLite's busy backoff, and the wait shows in the journal's figures (`GET /metrics`)."""

from __future__ import annotations

import sqlite3
import threading
import time

from posd.journal import JOURNAL_FILE, Journal
from posd.recorder import Recorder
from tests.cards import VISA_TEST_PAN, payment_meta, payment_secret

# Another writer holds the lock this long. SQLite's busy handler tries again 1, 3, 8, 18 and
# 33 ms after the first try: an append on it would begin 13 ms after the lock was free.
HOLD_S = 0.020
PROMPT_MARGIN_S = 0.008
# The append asks for the lock after its own preparation (data key, metadata, ids), which on a
# loaded machine takes a few ms of the hold: the wait it records is at least half the hold
# (an uncontended append records well under 1 ms), not all of it.
SEEN_SHARE = 0.5
START_TIMEOUT_S = 5.0


def append_one(recorder: Recorder) -> None:
    recorder.record("card_payment", payment_meta(VISA_TEST_PAN), payment_secret(VISA_TEST_PAN))


def hold_write_lock(journal: Journal, seconds: float) -> threading.Thread:
    """Another connection takes the write lock, keeps it `seconds`, commits; returns once
    the lock is taken."""
    taken = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(journal.path.parent / JOURNAL_FILE, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            taken.set()
            time.sleep(seconds)
            other.execute("COMMIT")
        finally:
            other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(START_TIMEOUT_S)
    return holder


def test_an_uncontended_append_waits_for_nothing(journal: Journal, recorder: Recorder) -> None:
    append_one(recorder)
    figures = journal.append_waits()
    assert figures.count == 1
    assert figures.max_s < HOLD_S
    assert dict(figures.buckets)[0.5] == 1


def test_an_append_begins_as_soon_as_another_writer_lets_go(
    journal: Journal, recorder: Recorder
) -> None:
    append_one(recorder)  # the data key and the tail are in hand: only the lock is timed
    holder = hold_write_lock(journal, HOLD_S)
    append_one(recorder)
    holder.join()
    figures = journal.append_waits()
    assert figures.count == 2
    assert HOLD_S * SEEN_SHARE <= figures.max_s < HOLD_S + PROMPT_MARGIN_S
    buckets = dict(figures.buckets)
    assert buckets[0.01] == 1 and buckets[0.05] == 2  # one waited 10-50 ms
    assert figures.total_s >= figures.max_s
