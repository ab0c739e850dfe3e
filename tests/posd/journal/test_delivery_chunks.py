"""Delivery's writes are short: a lease or a settlement of many records commits in
transactions of at most `DELIVERY_WRITE_ROWS` records each, so another writer of delivery's
database (the CLI) waits for one short chunk, never for a whole window's worth.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from posd.journal import Journal
from posd.journal.delivery import DELIVERY_WRITE_ROWS
from posd.recorder import Recorder
from sync.outbox import Delivered
from tests.cards import VISA_TEST_PAN, payment_meta, payment_secret

LEASE_SECONDS = 30.0
RECORDS = 3 * DELIVERY_WRITE_ROWS + 5  # four chunks, the last one short
BEGIN = "BEGIN IMMEDIATE"


@contextmanager
def transactions(journal: Journal) -> Iterator[list[str]]:
    """The write transactions the journal's writer connection begins inside the block."""
    statements: list[str] = []
    writer = journal.inspection.delivery  # delivery's own database (posd.journal.outcomes)
    assert writer is not None
    writer.set_trace_callback(statements.append)
    began: list[str] = []
    try:
        yield began
    finally:
        writer.set_trace_callback(None)
        began.extend(s for s in statements if s.startswith(BEGIN))


@pytest.fixture
def filled(recorder: Recorder, journal: Journal) -> Journal:
    meta, secret = payment_meta(VISA_TEST_PAN), payment_secret(VISA_TEST_PAN)
    for _ in range(RECORDS):
        recorder.record("card_payment", meta, secret)
    return journal


def test_a_large_lease_commits_in_short_transactions(filled: Journal) -> None:
    with transactions(filled) as began:
        lease = filled.lease(RECORDS, time.time(), LEASE_SECONDS)
    assert len(lease.records) == RECORDS
    assert len(began) == math.ceil(RECORDS / DELIVERY_WRITE_ROWS)
    # Every record was leased once: a second lease finds none due.
    assert filled.lease(RECORDS, time.time(), LEASE_SECONDS).records == []


def test_marking_many_delivered_commits_in_short_transactions(filled: Journal) -> None:
    lease = filled.lease(RECORDS, time.time(), LEASE_SECONDS)
    delivered = [Delivered(record.seq, f"remote-{record.seq}") for record in lease.records]
    with transactions(filled) as began:
        filled.mark_delivered(delivered, time.time())
    assert len(began) == math.ceil(RECORDS / DELIVERY_WRITE_ROWS)
    assert filled.summary().pending == 0


def test_retrying_many_commits_in_short_transactions(filled: Journal) -> None:
    lease = filled.lease(RECORDS, time.time(), LEASE_SECONDS)
    with transactions(filled) as began:
        filled.schedule_retry([r.seq for r in lease.records], 0.0, "throttled")
    assert len(began) == math.ceil(RECORDS / DELIVERY_WRITE_ROWS)
    assert len(filled.lease(RECORDS, time.time(), LEASE_SECONDS).records) == RECORDS
