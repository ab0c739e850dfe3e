"""A payment's append runs the statements of a raw durable insert and no more: BEGIN
IMMEDIATE, its INSERT, COMMIT (bench/journal_append.py compares the two). The checkpoint
check compares the record with the cached end of coverage, the busy wait is set once for a
run of appends, the size is counted every `CAPACITY_CHECK_EVERY` appends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posd.journal import Journal
from posd.journal.appending import CAPACITY_CHECK_EVERY
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from tests.cards import VISA_TEST_PAN, payment_meta

WARM_UP = 3  # the first append reads the tail, stores the key and counts the size
TRACED = 5
ONE_KEY_FOR = 1_000  # records: no key switch (another statement) among the traced appends


@pytest.fixture
def recorder(journal: Journal, tmp_path: Path) -> Iterator[Recorder]:
    source = LocalKeySource(tmp_path / "kek.b64", create=True)
    with RotatingKeyProvider(source, source, rotate_after_records=ONE_KEY_FOR) as keys:
        yield Recorder(journal, keys, "store-1", "lane-1")


def test_an_append_is_begin_insert_commit(recorder: Recorder, journal: Journal) -> None:
    assert min(CAPACITY_CHECK_EVERY, journal.settings.checkpoint_every_records) > WARM_UP + TRACED
    writer = journal.inspection.writer
    for _ in range(WARM_UP):
        recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x")
    statements: list[str] = []
    writer.set_trace_callback(statements.append)
    try:
        for _ in range(TRACED):
            recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x")
    finally:
        writer.set_trace_callback(None)
    kinds = [" ".join(sql.split()[:2]) for sql in statements]
    assert kinds == ["BEGIN IMMEDIATE", "INSERT INTO", "COMMIT"] * TRACED, statements
    assert journal.verify().ok


def test_a_checkpoint_is_still_cut_every_n_records(recorder: Recorder, journal: Journal) -> None:
    every = journal.settings.checkpoint_every_records
    for _ in range(2 * every + 1):
        recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x")
    status = journal.checkpoint_status()
    assert status.last_seq == 2 * every
    assert status.uncovered == 1
    assert journal.verify().ok
