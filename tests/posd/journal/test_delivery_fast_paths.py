"""Delivery's fast paths do what the slow ones did: the lease, and marking delivered.

The lease's fast path (`rows.linked_record`) hands out what the full check would.

A record sealed by posd is checked on its stored text (the AAD filled from the columns,
`wire.envelope.sealed_aad`) and its Detail is filled from that text
(`wire.events.record_detail_json`); anything else takes the full check. Either way the record,
its AAD and its Detail bytes are the same.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from posd.journal import Journal
from posd.journal.delivery import DELIVERY_WRITE_ROWS
from posd.journal.files import DELIVERY_FILE
from posd.journal.rows import outbox_record, select_records_with_previous
from posd.recorder import Recorder
from sync.events import EventBuilder
from sync.outbox import Delivered, OutboxRecord
from tests.cards import STORE_ID, TERMINAL_ID, VISA_TEST_PAN, payment_meta, payment_secret
from tests.conftest import query_file

LEASE = 30.0
# Metadata the Detail writes as UTF-8 and the AAD as escapes, and text JSON must escape.
META = {**payment_meta(VISA_TEST_PAN), "merchant": 'Caf\u00e9 "Nord"\n', "tip": None}


def full_check_records(journal: Journal) -> dict[int, OutboxRecord]:
    """Every row as the full check reads it (`outbox_record`), by seq."""
    conn = sqlite3.connect(journal.path)
    conn.row_factory = sqlite3.Row
    conn.execute("ATTACH DATABASE ? AS delivery", (str(journal.path.with_name(DELIVERY_FILE)),))
    rows = conn.execute(select_records_with_previous("ORDER BY r.seq")).fetchall()
    conn.close()
    return {int(row["seq"]): outbox_record(row) for row in rows}


def details(journal: Journal, records: Iterable[OutboxRecord]) -> list[str]:
    builder = EventBuilder(STORE_ID, TERMINAL_ID, "posd", "bus", journal.journal_id)
    return [builder.build(record).request_entry["Detail"] for record in records]


def test_a_leased_record_is_the_one_the_full_check_reads(
    recorder: Recorder, journal: Journal
) -> None:
    for _ in range(3):
        recorder.record("card_payment", META, payment_secret(VISA_TEST_PAN))
    expected = full_check_records(journal)
    lease = journal.lease(10, time.time(), LEASE)
    assert not lease.quarantined
    assert [r.meta_json for r in lease.records] != [None] * 3  # the fast path took them
    for record in lease.records:
        slow = expected[record.seq]
        assert (record.aad, record.chain, record.data_key) == (slow.aad, slow.chain, slow.data_key)
        assert dict(record.meta) == dict(slow.meta) == META
    assert details(journal, lease.records) == details(journal, expected.values())


def test_metadata_stored_in_another_spelling_is_delivered_as_sealed(
    recorder: Recorder, journal: Journal
) -> None:
    for _ in range(2):
        recorder.record("card_payment", META, payment_secret(VISA_TEST_PAN))
    expected = details(journal, full_check_records(journal).values())
    conn = sqlite3.connect(journal.path, isolation_level=None)
    conn.execute("UPDATE records SET meta = replace(meta, ',', ', ') WHERE seq = 2")
    conn.close()
    lease = journal.lease(10, time.time(), LEASE)
    assert not lease.quarantined
    assert [(r.seq, r.meta_json is None) for r in lease.records] == [(1, False), (2, True)]
    assert details(journal, lease.records) == expected


def test_marking_more_records_than_one_transaction_takes(
    recorder: Recorder, journal: Journal
) -> None:
    count = DELIVERY_WRITE_ROWS + 7
    for _ in range(count):
        recorder.record("card_payment", META, payment_secret(VISA_TEST_PAN))
    now = time.time()
    lease = journal.lease(count, now, LEASE)
    delivered = [Delivered(r.seq, f"remote-{r.seq}") for r in lease.records]
    journal.mark_delivered([*delivered, delivered[0]], now)  # a repeat changes nothing
    assert journal.summary().delivered == count
    rows = query_file(
        journal, "SELECT seq, state, remote_event_id, delivered_at FROM delivery.outcomes"
    )
    assert rows == [(seq, "delivered", f"remote-{seq}", now) for seq in range(1, count + 1)]
