"""The journal: durability settings, outbox operations, retention, verification, privacy."""

from __future__ import annotations

import inspect
import itertools
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from posd.errors import JournalFullError, SchemaError, UsageError
from posd.journal import JOURNAL_FILE, DuplicateClientRef, Journal, JournalSettings
from posd.journal.files import DELIVERY_FILE
from posd.journal.outcomes import OUTCOME_JOIN, STATE
from posd.journal.schema import SCHEMA_VERSION
from posd.journal.settings import MIB
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from sync.outbox import Delivered, Outbox
from tests.cards import (
    STORE_ID,
    TERMINAL_ID,
    TEST_PANS,
    VISA_TEST_PAN,
    payment_meta,
    payment_secret,
)
from tests.conftest import query_file

LEASE = 30.0
KEY_WAIT_S = 10.0  # for the background prefetch of the next data key


def capture(recorder: Recorder, count: int, pan: str = VISA_TEST_PAN, **meta: object) -> list[int]:
    return [
        recorder.record("card_payment", {**payment_meta(pan), **meta}, payment_secret(pan)).seq
        for _ in range(count)
    ]


def raw(state_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(state_dir / JOURNAL_FILE, isolation_level=None)


def raw_delivery(state_dir: Path) -> sqlite3.Connection:
    """Delivery's database (`posd.journal.outcomes`), as another process opens it."""
    return sqlite3.connect(state_dir / DELIVERY_FILE, isolation_level=None)


def test_pragmas_and_private_files(journal: Journal, state_dir: Path) -> None:
    conn = raw(state_dir)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal.durability() == {
        "journal_mode": "wal",
        "synchronous": "full",
        "secure_delete": True,
    }
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    # Private to the daemons' group (capture and delivery are two users in it), never others'.
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o770
    assert stat.S_IMODE((state_dir / JOURNAL_FILE).stat().st_mode) == 0o660
    assert stat.S_IMODE((state_dir / DELIVERY_FILE).stat().st_mode) == 0o660
    delivery = sqlite3.connect(state_dir / DELIVERY_FILE)
    assert delivery.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_journal_satisfies_the_outbox_protocol(journal: Journal) -> None:
    outbox: Outbox = journal  # checked by mypy; this line fails type-checking if not
    declared = [
        name for name, member in vars(Outbox).items() if callable(member) and name[0] != "_"
    ]
    assert outbox.journal_id and isinstance(outbox.journal_id, str)
    assert declared, "the Outbox protocol declares no operations"
    for name in declared:
        ours = inspect.signature(getattr(outbox, name))
        theirs = inspect.signature(getattr(Outbox, name))
        assert list(ours.parameters) == list(theirs.parameters)[1:], name  # minus self


def test_seq_is_monotonic_and_event_ids_time_ordered(recorder: Recorder) -> None:
    records = [
        recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x") for _ in range(50)
    ]
    assert [r.seq for r in records] == list(range(1, 51))
    assert [r.event_id for r in records] == sorted(r.event_id for r in records)
    assert all(r.event_id[14] == "7" for r in records)  # UUID version 7


def test_lease_deliver_retry_quarantine(recorder: Recorder, journal: Journal) -> None:
    capture(recorder, 6)
    now = time.time()
    leased = journal.lease(4, now, LEASE).records
    assert [r.seq for r in leased] == [1, 2, 3, 4]
    assert [r.seq for r in journal.lease(10, now, LEASE).records] == [
        5,
        6,
    ]  # leased ones are hidden
    assert journal.lease(10, now, LEASE).records == []

    journal.mark_delivered([Delivered(1, "eb-1"), Delivered(2, "eb-2")], now)
    journal.schedule_retry([3], now + 40, "ThrottlingException")
    journal.quarantine(4, "AccessDeniedException: not allowed")
    summary = journal.summary()
    assert (summary.pending, summary.delivered, summary.quarantined) == (3, 2, 1)
    # Lease expiry returns 5 and 6; 3 is not due until its retry time.
    assert [r.seq for r in journal.lease(10, now + LEASE + 1, LEASE).records] == [5, 6]
    assert [r.seq for r in journal.lease(10, now + 41, LEASE).records] == [3]
    retried = journal.lease(10, now + 200, LEASE).records
    assert [r.attempts for r in retried if r.seq == 3] == [1]

    assert journal.retry_quarantined() == 1
    assert 4 in [r.seq for r in journal.lease(10, now + 500, LEASE).records]
    # Delivered records are never delivered twice through the outbox.
    journal.mark_delivered([Delivered(1, "eb-other")], now)
    assert query_file(journal, "SELECT remote_event_id FROM delivery.outcomes WHERE seq = 1") == [
        ("eb-1",)
    ]
    # Bookkeeping commits without an fsync; the connection is back to FULL for appends.
    assert journal.durability()["synchronous"] == "full"


def test_a_lease_skips_records_another_connection_leased_since(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    """The lease's one upsert hides only rows still free when it runs: a row leased by another
    process between our read and our write is not handed out twice."""
    capture(recorder, 3)
    now = time.time()
    other = raw_delivery(state_dir)
    writer = journal.inspection.delivery
    assert writer is not None
    raced: list[str] = []

    def other_leases_before_our_write(sql: str) -> None:
        # Traced as it starts, before it takes the write lock: the lease has read its rows.
        if sql == "BEGIN IMMEDIATE" and not raced:
            raced.append(sql)
            other.execute("INSERT INTO outcomes (seq, leased_until) VALUES (2, ?)", (now + LEASE,))

    writer.set_trace_callback(other_leases_before_our_write)
    try:
        assert [r.seq for r in journal.lease(10, now, LEASE).records] == [1, 3]
    finally:
        writer.set_trace_callback(None)
    assert raced


def test_summary_counts_pending_amounts(recorder: Recorder, journal: Journal) -> None:
    capture(recorder, 2, amount=500, currency="EUR")
    capture(recorder, 1, amount=700, currency="USD")
    summary = journal.summary()
    assert dict(summary.pending_amount_by_currency) == {"EUR": 1000, "USD": 700}
    assert summary.oldest_pending_captured_at is not None


def test_summary_counts_agree_with_the_file_across_settlements_and_other_writers(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    def agrees() -> tuple[int, int, int]:
        summary, counted = journal.summary(), journal.stats()["records"]  # stats scans it all
        ours = (summary.pending, summary.delivered, summary.quarantined)
        assert ours == (counted["pending"], counted["delivered"], counted["quarantined"])
        return ours

    capture(recorder, 6)
    now = time.time()
    assert agrees() == (6, 0, 0)
    # The repeated one is a no-op: already delivered.
    journal.mark_delivered([Delivered(1, "eb-1"), Delivered(2, "eb-2"), Delivered(2, "x")], now)
    journal.quarantine(6, "tampered: chain mismatch")
    assert agrees() == (3, 2, 1)
    assert journal.summary().tampered == 1
    assert journal.purge_delivered(now + 1) == 2
    assert agrees() == (3, 0, 1)
    journal.mark_delivered([Delivered(3, "eb-3")], now)
    raw_delivery(state_dir).execute(  # another process
        "INSERT INTO outcomes (seq, state, delivered_at) VALUES (4, 'delivered', 1)"
    )
    assert agrees() == (1, 2, 1)


def test_summary_reads_the_backlog_not_the_whole_journal(
    recorder: Recorder, journal: Journal
) -> None:
    """Every payment runs `summary` (offline limits): it must not scan the records table."""
    capture(recorder, 3)
    journal.mark_delivered([Delivered(1, "eb-1")], time.time())
    statements: list[str] = []
    # the backlog is read on the reader connection (delivery's database attached to it)
    connections = [journal.inspection.writer, journal.inspection.reader]
    for conn in connections:
        conn.set_trace_callback(statements.append)
    try:
        journal.summary()
    finally:
        for conn in connections:
            conn.set_trace_callback(None)
    plans = [
        str(row[3])
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
        for row in journal.inspection.reader.execute("EXPLAIN QUERY PLAN " + sql)
    ]
    assert any("outcomes_quarantined" in plan for plan in plans), plans
    assert any("SEARCH r USING INTEGER PRIMARY KEY (rowid>?)" in plan for plan in plans), plans
    assert not [plan for plan in plans if plan.startswith("SCAN") and "INDEX" not in plan], plans


def test_duplicate_client_ref_is_refused(recorder: Recorder) -> None:
    recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x", client_ref="reg-1")
    with pytest.raises(DuplicateClientRef):
        recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x", client_ref="reg-1")
    assert recorder.journal.find_by_client_ref("reg-1") is not None


def test_amounts_and_integers_are_bounded_at_capture(recorder: Recorder) -> None:
    with pytest.raises(UsageError, match="amount must be an integer from 0 to"):
        recorder.record("card_payment", {"amount": 2**62, "currency": "EUR"}, b"x")
    with pytest.raises(UsageError, match="amount"):
        recorder.record("card_payment", {"amount": -1, "currency": "EUR"}, b"x")
    with pytest.raises(UsageError, match="within"):
        recorder.record("card_payment", {"count": 2**60}, b"x")
    assert recorder.journal.summary().pending == 0


def test_bad_metadata_is_refused(recorder: Recorder) -> None:
    with pytest.raises(UsageError, match="must be a string"):
        recorder.record("card_payment", {"ratio": 1.5}, b"x")
    with pytest.raises(UsageError, match="kind"):
        recorder.record("", {}, b"x")


def test_purge_keeps_the_chain_verifiable(recorder: Recorder, journal: Journal) -> None:
    capture(recorder, 10)
    now = time.time()
    journal.lease(10, now, LEASE)
    # 1-3 and 5-6 delivered long ago; 4 still pending: only 1-3 can leave the file.
    journal.mark_delivered([Delivered(s, f"eb-{s}") for s in (1, 2, 3, 5, 6)], now - 1000)
    assert journal.purge_delivered(now - 500) == 5
    seqs = [row[0] for row in query_file(journal, "SELECT seq FROM records ORDER BY seq")]
    assert seqs == [4, 5, 6, 7, 8, 9, 10]
    erased = "SELECT seq FROM records WHERE seq IN (5, 6) AND ciphertext IS NULL ORDER BY seq"
    assert query_file(journal, erased) == [(5,), (6,)]
    assert journal.verify().ok

    journal.mark_delivered([Delivered(4, "eb-4")], now - 1000)
    journal.purge_delivered(now - 500)
    assert journal.verify().ok
    assert capture(recorder, 1) == [11]  # seq never reused
    assert journal.verify().ok


def test_purge_of_everything_then_append(recorder: Recorder, journal: Journal) -> None:
    capture(recorder, 3)
    journal.lease(10, time.time(), LEASE)
    journal.mark_delivered([Delivered(s, "x") for s in (1, 2, 3)], 0)
    journal.purge_delivered(time.time())
    assert journal.stats()["records"]["delivered"] == 0
    assert capture(recorder, 1) == [4]
    report = journal.verify()
    assert report.ok and report.first_seq == 4


@pytest.mark.parametrize("column", ["ciphertext", "nonce", "meta", "wrapped_key"])
def test_verify_reports_a_flipped_byte(
    recorder: Recorder, journal: Journal, state_dir: Path, column: str
) -> None:
    capture(recorder, 5)
    assert journal.verify().ok
    conn = raw(state_dir)
    if column == "wrapped_key":
        key_id = conn.execute("SELECT data_key_id FROM records WHERE seq = 3").fetchone()[0]
        blob = bytearray(
            conn.execute(
                "SELECT wrapped_key FROM data_keys WHERE key_id = ?", (key_id,)
            ).fetchone()[0]
        )
        blob[len(blob) // 2] ^= 0x01
        conn.execute("UPDATE data_keys SET wrapped_key = ? WHERE key_id = ?", (bytes(blob), key_id))
    elif column == "meta":
        conn.execute("UPDATE records SET meta = replace(meta, '1234', '1235') WHERE seq = 3")
    else:
        value = bytearray(conn.execute(f"SELECT {column} FROM records WHERE seq = 3").fetchone()[0])
        value[0] ^= 0x80
        conn.execute(f"UPDATE records SET {column} = ? WHERE seq = 3", (bytes(value),))
    conn.close()
    report = journal.verify()
    assert not report.ok
    assert 3 in {p.seq for p in report.problems}
    assert {p.kind for p in report.problems} == {"chain"}


def test_verify_reports_a_deleted_record(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    capture(recorder, 5)
    raw(state_dir).execute("DELETE FROM records WHERE seq = 3")
    problems = journal.verify().problems
    assert [(p.seq, p.kind) for p in problems] == [(4, "gap"), (4, "chain")]


def test_corrupt_record_is_quarantined_not_fatal(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    capture(recorder, 3)
    conn = raw(state_dir)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("UPDATE records SET data_key_id = 'gone' WHERE seq = 2")
    conn.close()
    leased = journal.lease(10, time.time(), LEASE).records
    assert [r.seq for r in leased] == [1, 3]
    [(state, reason)] = query_file(
        journal, "SELECT state, last_error FROM delivery.outcomes WHERE seq = 2"
    )
    assert state == "quarantined" and "data key gone is missing" in reason


def test_size_cap_refuses_new_records_and_keeps_old_ones(
    state_dir: Path, local_key_provider: object
) -> None:
    from posd.keys.provider import RotatingKeyProvider

    assert isinstance(local_key_provider, RotatingKeyProvider)
    with Journal.open(state_dir, JournalSettings(max_bytes=MIB)) as journal:
        recorder = Recorder(journal, local_key_provider, "s", "t")
        written = 0
        with pytest.raises(JournalFullError, match="journal is full"):
            for _ in range(10_000):
                recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x" * 1000)
                written += 1
        assert written > 300
        assert journal.summary().pending == written
        assert journal.verify().ok


def test_disk_reserve_refuses_new_records(state_dir: Path, local_key_provider: object) -> None:
    from posd.keys.provider import RotatingKeyProvider

    assert isinstance(local_key_provider, RotatingKeyProvider)
    with (
        Journal.open(state_dir, JournalSettings(min_free_bytes=2**62)) as journal,
        pytest.raises(JournalFullError, match="disk reserve"),
    ):
        Recorder(journal, local_key_provider, "s", "t").record("card_payment", {}, b"x")


def test_a_version_1_journal_migrates_forward_keeping_its_records(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    capture(recorder, 3)
    journal.close()
    conn = raw(state_dir)
    # what a journal written by schema version 1 lacks: alarms (v2), partial indexes (v3,
    # gone again in v6), checkpoints (v4), the data keys' last seq (v5)
    conn.execute("DROP TABLE alarms")
    conn.execute("DROP TABLE checkpoints")
    conn.execute("ALTER TABLE data_keys DROP COLUMN last_seq")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with Journal.open(state_dir) as reopened:
        assert reopened.summary().pending == 3
        assert reopened.pending_alarms(10) == []
        assert reopened.verify().ok
        # keys already stored are closed at the last seq: no record above it used them
        assert query_file(reopened, "SELECT DISTINCT last_seq FROM data_keys") == [(3,)]
    assert raw(state_dir).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused(state_dir: Path) -> None:
    Journal.open(state_dir).close()
    raw(state_dir).execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaError, match="newer"):
        Journal.open(state_dir)


def test_no_card_number_in_clear_on_disk(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    for pan in TEST_PANS:
        capture(recorder, 20, pan=pan)
    files = [p for p in state_dir.iterdir() if p.name.startswith(JOURNAL_FILE)]
    assert any(p.name.endswith("-wal") for p in files)
    data = b"".join(p.read_bytes() for p in files)
    assert len(data) > 10_000
    for pan in TEST_PANS:
        assert pan.encode() not in data
        assert pan.encode("utf-16-le") not in data
    assert b"track2" not in data


def test_concurrent_capture_across_key_rotations(state_dir: Path, tmp_path: Path) -> None:
    import threading

    from posd.keys.local import LocalKeySource
    from posd.keys.provider import RotatingKeyProvider
    from wire.envelope import open_sealed

    source = LocalKeySource(tmp_path / "kek.b64", create=True)
    threads, per_thread = 4, 40
    with (
        RotatingKeyProvider(source, source, rotate_after_records=3) as keys,
        Journal.open(state_dir) as journal,
    ):
        recorder = Recorder(journal, keys, "s", "t")

        def work(worker: int) -> None:
            for index in range(per_thread):
                recorder.record("card_payment", {"n": index}, f"{worker}-{index}".encode())

        pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=60)
        records = list(journal.records())
        assert journal.verify().ok
    assert len(records) == threads * per_thread
    assert len({r.data_key.key_id for r in records}) > 10
    opened = {open_sealed(source.unwrap(r.data_key), r.nonce, r.ciphertext, r.aad) for r in records}
    assert opened == {f"{w}-{i}".encode() for w in range(threads) for i in range(per_thread)}


# -- purge at any journal size: bounded chunks, keys by last seq, crash safety ------------------

PURGE_UPDATE = "UPDATE records SET state = 'purged'"
RECORDS = f"records r {OUTCOME_JOIN}"  # each record with its delivery state


def deliver(journal: Journal, seqs: range | list[int], at: float) -> None:
    journal.lease(len(seqs) + 100, time.time(), LEASE)
    journal.mark_delivered([Delivered(s, f"eb-{s}") for s in seqs], at)


def traced_purge(
    journal: Journal, before: float, chunk_rows: int, through_seq: int | None = None
) -> tuple[int, list[str]]:
    statements: list[str] = []
    journal.inspection.writer.set_trace_callback(statements.append)
    try:
        erased = journal.purge_in_chunks(before, chunk_rows, through_seq)
    finally:
        journal.inspection.writer.set_trace_callback(None)
    return erased, statements


def test_purge_goes_in_chunks_each_its_own_transaction(
    recorder: Recorder, journal: Journal
) -> None:
    capture(recorder, 23)
    now = time.time()
    deliver(journal, range(1, 24), now - 1000)
    erased, statements = traced_purge(journal, now - 500, chunk_rows=4)
    assert erased == 23
    updates = [i for i, sql in enumerate(statements) if sql.startswith(PURGE_UPDATE)]
    assert len(updates) == 6  # 23 seqs, 4 a chunk
    for first, second in itertools.pairwise(updates):
        assert "COMMIT" in statements[first:second]  # the lock is released between chunks
    assert query_file(journal, "SELECT COUNT(*) FROM records") == [(0,)]
    assert capture(recorder, 1) == [24]
    assert journal.verify().ok


def test_a_capture_is_taken_between_purge_chunks(recorder: Recorder, journal: Journal) -> None:
    """A real thread purges while this one captures: the capture does not wait for the purge."""
    capture(recorder, 150)
    now = time.time()
    deliver(journal, range(1, 151), now - 1000)
    started, finished = threading.Event(), threading.Event()

    def purge() -> None:
        journal.inspection.writer.set_trace_callback(
            lambda sql: started.set() if sql.startswith(PURGE_UPDATE) else None
        )
        journal.purge_in_chunks(now - 500, 1)
        finished.set()

    purger = threading.Thread(target=purge)
    purger.start()
    assert started.wait(10)
    capture(recorder, 1)
    captured_during_purge = not finished.is_set()
    purger.join()
    journal.inspection.writer.set_trace_callback(None)
    assert captured_during_purge
    assert journal.verify().ok


def test_purge_never_takes_undelivered_or_young_records(
    recorder: Recorder, journal: Journal
) -> None:
    capture(recorder, 12)
    now = time.time()
    deliver(journal, [1, 2, 3, 6, 8], now - 1000)
    deliver(journal, [7], now)
    journal.quarantine(5, "tampered: chain mismatch")
    assert journal.purge_in_chunks(now - 500, 2) == 4  # 1-3 and 6
    kept = f"SELECT r.seq, {STATE}, r.ciphertext IS NOT NULL FROM {RECORDS} ORDER BY r.seq"
    assert query_file(journal, kept) == [
        (4, "pending", 1),
        (5, "quarantined", 1),
        (6, "purged", 0),
        (7, "delivered", 1),  # within retention
        (8, "delivered", 1),  # old, but behind 7: it goes when 7 does (later, never earlier)
        *[(s, "pending", 1) for s in range(9, 13)],
    ]
    assert journal.purge_in_chunks(now + 1, 2) == 2
    assert journal.summary().pending == 5 and journal.summary().quarantined == 1
    assert journal.verify().ok


def test_purge_through_a_seq_erases_nothing_above_it(recorder: Recorder, journal: Journal) -> None:
    """The bound the cloud's proven watermark sets (sync/acknowledgement.py): old delivered
    records above it stay, in chunks as without a bound, and go once the bound moves past."""
    capture(recorder, 12)
    now = time.time()
    deliver(journal, range(1, 11), now - 1000)
    erased, statements = traced_purge(journal, now - 500, chunk_rows=3, through_seq=7)
    assert erased == 7
    assert len([sql for sql in statements if sql.startswith(PURGE_UPDATE)]) == 3  # 1-3, 4-6, 7
    remaining = f"SELECT r.seq, {STATE} FROM {RECORDS} ORDER BY r.seq"
    assert query_file(journal, remaining) == [
        *[(s, "delivered") for s in (8, 9, 10)],  # old enough, but not proven
        (11, "pending"),
        (12, "pending"),
    ]
    assert journal.purge_in_chunks(now - 500, 3, through_seq=5) == 0  # behind the front
    assert journal.purge_delivered(now - 500, through_seq=9) == 2
    assert journal.summary().delivered == 1
    assert journal.verify().ok


def test_purge_drops_a_data_key_once_its_last_record_is_gone(
    recorder: Recorder, journal: Journal
) -> None:
    capture(recorder, 12)  # the key rotates every 5 records: 1-5, 6-10, 11-12 (in use)
    key_of = dict(query_file(journal, "SELECT seq, data_key_id FROM records"))
    assert len({key_of[1], key_of[6], key_of[11]}) == 3
    deliver(journal, range(1, 13), time.time() - 1000)
    keys = "SELECT key_id FROM data_keys ORDER BY key_id"
    journal.purge_in_chunks(time.time(), 7)
    assert query_file(journal, keys) == [(key_of[11],)]  # the key in use stays
    assert capture(recorder, 1) == [13]
    assert journal.verify().ok


def test_purge_keeps_a_key_its_remaining_records_use(
    recorder: Recorder, journal: Journal, local_key_provider: RotatingKeyProvider
) -> None:
    for _ in range(12):
        # A key is rotated after 5 records once the background prefetch has the next one:
        # waiting for it keeps a loaded machine from sealing more records with one key.
        assert local_key_provider.wait_ready(KEY_WAIT_S)
        capture(recorder, 1)
    key_of = dict(query_file(journal, "SELECT seq, data_key_id FROM records"))
    first_key, second_key = list(dict.fromkeys(key_of[seq] for seq in sorted(key_of)))[:2]
    second_key_seqs = [seq for seq in sorted(key_of) if key_of[seq] == second_key]
    purged = [seq for seq in sorted(key_of) if key_of[seq] == first_key] + second_key_seqs[:1]
    assert len(second_key_seqs) >= 2  # so the second key is used on both sides of the purge
    deliver(journal, purged, time.time() - 1000)
    journal.purge_in_chunks(time.time(), 3)
    keys = {row[0] for row in query_file(journal, "SELECT key_id FROM data_keys")}
    # The first key went with its records; the second is kept for its remaining records.
    assert keys == {key_of[seq] for seq in key_of if seq not in purged}
    assert first_key not in keys and second_key in keys
    assert journal.verify().ok


def test_purge_does_not_scan_the_records_table(recorder: Recorder, journal: Journal) -> None:
    capture(recorder, 12)
    now = time.time()
    deliver(journal, [1, 2, 3, 5, 6, 9], now - 1000)
    deliver(journal, [10], now)
    _, statements = traced_purge(journal, now - 500, chunk_rows=3)
    writer = journal.inspection.writer
    plans: list[str] = []
    for sql in statements:
        if sql.startswith("PRAGMA foreign_keys"):  # a deleted data key is checked by a scan
            writer.execute(sql)  # so each statement is planned as it ran
        elif sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            plans += [str(row[3]) for row in writer.execute("EXPLAIN QUERY PLAN " + sql)]
    assert writer.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # left on
    assert "DELETE FROM data_keys" in " ".join(statements)
    assert any("INTEGER PRIMARY KEY" in plan for plan in plans), plans
    assert not [plan for plan in plans if plan.startswith("SCAN records")], plans


KILLED_PURGE = """
import sys, time
from pathlib import Path
from posd.journal import Journal

journal = Journal.open(Path(sys.argv[1]))
journal.inspection.writer.set_trace_callback(lambda sql: print(sql, flush=True))
journal.purge_in_chunks(time.time(), 5)
"""


def test_a_purge_killed_midway_leaves_a_consistent_journal(
    local_key_provider: RotatingKeyProvider, state_dir: Path
) -> None:
    with Journal.open(state_dir) as journal:
        capture(Recorder(journal, local_key_provider, STORE_ID, TERMINAL_ID), 300)
        deliver(journal, range(1, 301), time.time() - 1000)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_PURGE, str(state_dir)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    commits = 0
    for line in child.stdout:
        commits += line.strip() == "COMMIT"
        if commits == 4:
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL
    with Journal.open(state_dir) as journal:
        assert journal.verify().ok
        left = query_file(journal, "SELECT COUNT(*) FROM records")[0][0]
        assert 0 < left < 300  # killed midway
        erased_payloads = (
            "SELECT COUNT(*) FROM records WHERE state = 'purged' AND ciphertext IS NULL"
        )
        assert query_file(journal, erased_payloads)[0][0] == journal.stats()["records"].get(
            "purged", 0
        )
        journal.purge_delivered(time.time())
        assert query_file(journal, "SELECT COUNT(*) FROM records") == [(0,)]
        assert capture(Recorder(journal, local_key_provider, STORE_ID, TERMINAL_ID), 1) == [301]
        assert journal.verify().ok


DISK_MARGIN = 256 * MIB  # room left below the reserve when the test starts
FILLER = 4 * DISK_MARGIN  # what the test then takes of the disk


def test_the_disk_reserve_is_checked_on_every_append(
    state_dir: Path, local_key_provider: RotatingKeyProvider
) -> None:
    """Free space that falls below the reserve between two appends refuses the second, and
    `space_problem` (what `GET /v1/status` reports) says so, until the space is back."""
    reserve = shutil.disk_usage(state_dir.parent).free - DISK_MARGIN
    with Journal.open(state_dir, JournalSettings(min_free_bytes=reserve)) as journal:
        recorder = Recorder(journal, local_key_provider, "s", "t")
        recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x")
        assert journal.space_problem() is None
        filler = state_dir.parent / "filler"
        with filler.open("wb") as file:
            os.posix_fallocate(file.fileno(), 0, FILLER)
        try:
            with pytest.raises(JournalFullError, match="disk reserve"):
                recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x")
            assert "disk reserve" in (journal.space_problem() or "")
        finally:
            filler.unlink()
        assert journal.space_problem() is None
        recorder.record("card_payment", payment_meta(VISA_TEST_PAN), b"x")
        assert journal.summary().pending == 2
