"""Checkpoints in the journal: cut every N records (atomically with the Nth) or by the timer,
contiguous ranges whose chain values are the records' own, across restarts and real kills,
journal resets and migrations; never empty; checked by `verify`."""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posd.journal import JOURNAL_FILE, Journal, JournalSettings
from posd.journal.schema import SCHEMA_VERSION
from posd.keys.local import LocalKeySource, create_key_file
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from sync.outbox import Alarm, Checkpoint, Delivered, OutboxRecord
from tests.cards import STORE_ID, TERMINAL_ID, VISA_TEST_PAN, payment_meta, payment_secret
from tests.posd.journal.test_crash import run_and_kill
from wire.envelope import GENESIS_CHAIN, chain_next

GENESIS = GENESIS_CHAIN.hex()
EVERY = 5
PERIOD = 60.0
KILL_ROUNDS = 6


def capture(journal: Journal, keys: RotatingKeyProvider, count: int) -> list[OutboxRecord]:
    recorder = Recorder(journal, keys, STORE_ID, TERMINAL_ID)
    meta, secret = payment_meta(VISA_TEST_PAN), payment_secret(VISA_TEST_PAN)
    return [recorder.record("card_payment", meta, secret) for _ in range(count)]


def stored(journal: Journal) -> list[Checkpoint]:
    """Every checkpoint not yet sent (none is sent in these tests), oldest first."""
    return [e for e in journal.pending_side_events(10_000) if isinstance(e, Checkpoint)]


def prove(checkpoint: Checkpoint, records: dict[int, OutboxRecord]) -> bool:
    """What a consumer does: recompute the chain over the range from `chain_before`."""
    chain = bytes.fromhex(checkpoint.chain_before)
    for seq in range(checkpoint.first_seq, checkpoint.last_seq + 1):
        record = records[seq]
        chain = chain_next(chain, record.aad, record.nonce, record.ciphertext)
    return chain.hex() == checkpoint.chain


def assert_contiguous(checkpoints: list[Checkpoint], start: int = 0, before: str = GENESIS) -> None:
    for checkpoint in checkpoints:
        assert (checkpoint.first_seq, checkpoint.chain_before) == (start + 1, before)
        assert checkpoint.count == checkpoint.last_seq - checkpoint.first_seq + 1 >= 1
        start, before = checkpoint.last_seq, checkpoint.chain


@pytest.fixture
def every_five(state_dir: Path) -> Iterator[Journal]:
    settings_ = JournalSettings(checkpoint_every_records=EVERY, checkpoint_every_seconds=PERIOD)
    with Journal.open(state_dir, settings_) as journal:
        yield journal


def test_every_nth_record_cuts_a_checkpoint_ending_at_its_chain(
    every_five: Journal, local_key_provider: RotatingKeyProvider
) -> None:
    records = {r.seq: r for r in capture(every_five, local_key_provider, 12)}
    checkpoints = stored(every_five)
    assert [(c.first_seq, c.last_seq) for c in checkpoints] == [(1, 5), (6, 10)]
    assert_contiguous(checkpoints)
    for checkpoint in checkpoints:
        assert checkpoint.chain == records[checkpoint.last_seq].chain
        assert checkpoint.journal_id == every_five.journal_id
        assert checkpoint.event_id[14] == "7"  # a UUIDv7 like every event id
        assert prove(checkpoint, records)
    status = every_five.checkpoint_status()
    assert (status.last_seq, status.pending) == (10, 2)


def test_the_timer_covers_what_came_since_and_never_cuts_an_empty_one(
    every_five: Journal, local_key_provider: RotatingKeyProvider
) -> None:
    start = time.time()
    assert not every_five.cut_checkpoint(start)  # starts the timer
    records = {r.seq: r for r in capture(every_five, local_key_provider, 7)}  # cuts 1..5
    assert not every_five.cut_checkpoint(start + PERIOD - 1)
    assert every_five.cut_checkpoint(start + PERIOD)
    assert not every_five.cut_checkpoint(start + 2 * PERIOD)  # nothing new: no empty one
    records.update({r.seq: r for r in capture(every_five, local_key_provider, 1)})
    assert every_five.cut_checkpoint(start + 2 * PERIOD - 30)  # the clock went back: due
    checkpoints = stored(every_five)
    assert [(c.first_seq, c.last_seq) for c in checkpoints] == [(1, 5), (6, 7), (8, 8)]
    assert_contiguous(checkpoints)
    assert all(prove(c, records) for c in checkpoints)
    # The count goes on from the timer's cut: the next one ends 5 records after seq 8.
    records.update({r.seq: r for r in capture(every_five, local_key_provider, 5)})
    assert stored(every_five)[-1].last_seq == 13


def test_ranges_stay_contiguous_across_reopening(
    state_dir: Path, local_key_provider: RotatingKeyProvider
) -> None:
    records: dict[int, OutboxRecord] = {}
    settings_ = JournalSettings(checkpoint_every_records=4)
    for count in (3, 6, 2, 9):
        with Journal.open(state_dir, settings_) as journal:
            records.update({r.seq: r for r in capture(journal, local_key_provider, count)})
    with Journal.open(state_dir, settings_) as journal:
        checkpoints = stored(journal)
        assert journal.verify().ok
    assert [c.last_seq for c in checkpoints] == [4, 8, 12, 16, 20]
    assert_contiguous(checkpoints)
    assert all(prove(c, records) for c in checkpoints)


def test_ranges_stay_contiguous_across_sigkills(tmp_path: Path) -> None:
    """A real appending process killed at random moments: each checkpoint was committed with
    the record that completes it, so none is lost, cut twice or left overlapping."""
    rng = random.Random(os.urandom(8))
    state_dir, key_file = tmp_path / "state", tmp_path / "kek.b64"
    create_key_file(key_file)
    for _ in range(KILL_ROUNDS):
        run_and_kill(state_dir, key_file, rng, "7")
    with Journal.open(state_dir) as journal:
        records = {record.seq: record for record in journal.records()}
        checkpoints = stored(journal)
        report = journal.verify()
    assert report.ok and report.checkpoints_checked == len(checkpoints), report.problems
    assert checkpoints and checkpoints[-1].last_seq == max(records) // 7 * 7
    assert_contiguous(checkpoints)
    assert all(c.count == 7 and prove(c, records) for c in checkpoints)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    every=st.integers(min_value=1, max_value=6),
    steps=st.lists(st.one_of(st.integers(min_value=1, max_value=8), st.just("tick")), max_size=8),
)
def test_any_mix_of_appends_and_ticks_covers_exactly_what_was_issued(
    every: int, steps: list[int | str]
) -> None:
    with tempfile.TemporaryDirectory() as work:
        source = LocalKeySource(Path(work) / "kek.b64", create=True)
        settings_ = JournalSettings(checkpoint_every_records=every, checkpoint_every_seconds=1)
        with (
            RotatingKeyProvider(source, source) as keys,
            Journal.open(Path(work) / "state", settings_) as journal,
        ):
            clock = 1e9
            journal.cut_checkpoint(clock)
            records: dict[int, OutboxRecord] = {}
            ticked_at = 0
            for step in steps:
                if step == "tick":
                    clock += 1
                    journal.cut_checkpoint(clock)
                    ticked_at = len(records)
                else:
                    assert isinstance(step, int)
                    records.update({r.seq: r for r in capture(journal, keys, step)})
            checkpoints = stored(journal)
    assert_contiguous(checkpoints)
    covered = checkpoints[-1].last_seq if checkpoints else 0
    # Everything up to the last tick is covered; after it, all but the last < every records.
    assert covered >= ticked_at
    assert len(records) - covered < every
    assert all(prove(c, records) for c in checkpoints)


def test_a_journal_reset_starts_checkpoints_after_the_anchor(
    state_dir: Path, local_key_provider: RotatingKeyProvider
) -> None:
    settings_ = JournalSettings(checkpoint_every_records=3)
    with Journal.open(state_dir, settings_) as journal:
        issued = capture(journal, local_key_provider, 4)[-1].seq  # checkpoint 1..3
    for name in (JOURNAL_FILE, f"{JOURNAL_FILE}-wal", f"{JOURNAL_FILE}-shm"):
        (state_dir / name).unlink(missing_ok=True)
    accepted = Journal.accept_loss(state_dir)
    with Journal.open(state_dir, settings_) as journal:
        records = {r.seq: r for r in capture(journal, local_key_provider, 3)}
        [checkpoint] = stored(journal)
        assert journal.verify().ok
    assert (checkpoint.first_seq, checkpoint.last_seq) == (issued + 1, issued + 3)
    assert checkpoint.chain_before == GENESIS  # the anchor chain of a new journal
    assert checkpoint.journal_id == accepted.journal_id
    assert prove(checkpoint, records)


def test_tampered_records_are_still_covered_and_alarmed(
    every_five: Journal, local_key_provider: RotatingKeyProvider
) -> None:
    capture(every_five, local_key_provider, 3)
    conn = sqlite3.connect(every_five.path, isolation_level=None)
    conn.execute("UPDATE records SET ciphertext = randomblob(64) WHERE seq = 2")
    conn.close()
    lease = every_five.lease(10, time.time(), 30.0)
    assert [q.seq for q in lease.quarantined] == [2]
    capture(every_five, local_key_provider, 2)
    alarm, checkpoint = every_five.pending_side_events(10)  # alarms go first
    assert isinstance(alarm, Alarm) and alarm.seq == 2
    assert isinstance(checkpoint, Checkpoint)
    assert (checkpoint.first_seq, checkpoint.last_seq) == (1, 5)
    kinds = {p.kind for p in every_five.verify().problems}
    assert kinds == {"chain"}  # the record, not the checkpoint: its chain values still hold


def test_verify_reports_a_checkpoint_that_disagrees_with_the_chain(
    every_five: Journal, local_key_provider: RotatingKeyProvider
) -> None:
    capture(every_five, local_key_provider, 10)
    conn = sqlite3.connect(every_five.path, isolation_level=None)
    conn.execute("UPDATE checkpoints SET chain = zeroblob(32) WHERE last_seq = 5")
    conn.close()
    problems = every_five.verify().problems
    assert [(p.kind, p.seq) for p in problems] == [("checkpoint", 5), ("checkpoint", 6)]
    assert "altered" in problems[0].detail and "does not continue" in problems[1].detail


def test_purge_needs_no_checkpoint_and_keeps_the_newest(
    every_five: Journal, local_key_provider: RotatingKeyProvider
) -> None:
    records = capture(every_five, local_key_provider, 12)
    now = time.time()
    every_five.mark_delivered([Delivered(r.seq, f"remote-{r.seq}") for r in records[:11]], now)
    assert every_five.purge_delivered(now + 1) == 11  # checkpoints unsent: purge goes on
    assert [c.last_seq for c in stored(every_five)] == [5, 10]  # and they still go out
    every_five.mark_side_events_sent(stored(every_five), now)
    every_five.purge_delivered(now + 1)
    assert stored(every_five) == [] and every_five.checkpoint_status().last_seq == 10
    records += capture(every_five, local_key_provider, 3)  # the next continues from 10
    [checkpoint] = stored(every_five)
    assert (checkpoint.first_seq, checkpoint.chain_before) == (11, records[9].chain)
    assert every_five.verify().ok


# What a journal written by an older schema version lacks (the partial indexes v3 made are
# gone again since v6).
NO_KEY_LAST_SEQ = "ALTER TABLE data_keys DROP COLUMN last_seq"  # schema v5
LACKS = {
    2: (
        "DROP TABLE checkpoints",
        NO_KEY_LAST_SEQ,
    ),
    3: ("DROP TABLE checkpoints", NO_KEY_LAST_SEQ),
    4: (NO_KEY_LAST_SEQ,),
}


@pytest.mark.parametrize("version", sorted(LACKS))
def test_an_older_journal_migrates_and_checkpoints_from_its_start(
    state_dir: Path, local_key_provider: RotatingKeyProvider, version: int
) -> None:
    with Journal.open(state_dir) as journal:
        records = {r.seq: r for r in capture(journal, local_key_provider, 4)}
    conn = sqlite3.connect(state_dir / JOURNAL_FILE, isolation_level=None)
    for statement in LACKS[version]:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    with Journal.open(state_dir, JournalSettings(checkpoint_every_records=EVERY)) as journal:
        assert journal.summary().pending == 4
        records.update({r.seq: r for r in capture(journal, local_key_provider, 1)})
        [checkpoint] = stored(journal)
        assert journal.verify().ok
    conn = sqlite3.connect(state_dir / JOURNAL_FILE)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    assert (checkpoint.first_seq, checkpoint.last_seq, checkpoint.chain_before) == (1, 5, GENESIS)
    assert prove(checkpoint, records)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"checkpoint_every_records": 0}, "checkpoint_every_records: must be from 1"),
        ({"checkpoint_every_seconds": 0.5}, "checkpoint_every_seconds: must be from 1"),
        ({"checkpoint_every_seconds": float("nan")}, "checkpoint_every_seconds"),
        ({"checkpoint_every_seconds": 2 * 86_400.0}, "one day"),
    ],
)
def test_checkpoint_settings_are_validated(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JournalSettings(**changes)  # type: ignore[arg-type]


def test_a_capture_process_sees_the_other_process_checkpoints_even_once_forgotten(
    state_dir: Path, local_key_provider: RotatingKeyProvider
) -> None:
    """Capture and delivery are two processes on one journal: delivery's timed cuts change
    where capture's next every-Nth cut starts, even after delivery has forgotten (deleted)
    the sent ones, so no two ranges ever overlap."""
    settings_ = JournalSettings(checkpoint_every_records=EVERY, checkpoint_every_seconds=PERIOD)
    with (
        Journal.open(state_dir, settings_) as capture_side,
        Journal.open(state_dir, settings_) as delivery_side,
    ):
        capture(capture_side, local_key_provider, 1)  # capture caches: nothing covered yet
        assert delivery_side.cut_checkpoint(time.time(), force=True)  # 1..1
        capture(capture_side, local_key_provider, 1)
        assert delivery_side.cut_checkpoint(time.time(), force=True)  # 2..2
        # Delivery forgets the first (sent, its records purged): only the newest is kept.
        writer = delivery_side.inspection.writer
        with delivery_side.inspection.lock:
            writer.execute("DELETE FROM checkpoints WHERE first_seq = 1")
            writer.commit()
        capture(capture_side, local_key_provider, EVERY)  # the 5th since seq 2 cuts 3..7
        ranges = [(c.first_seq, c.last_seq) for c in stored(capture_side)]
    assert ranges == [(2, 2), (3, 7)]
