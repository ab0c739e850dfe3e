"""The journal: durability settings, outbox operations, retention, verification, privacy."""

from __future__ import annotations

import inspect
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from posd.errors import JournalFullError, SchemaError, UsageError
from posd.journal import JOURNAL_FILE, DuplicateClientRef, Journal, JournalSettings
from posd.journal.schema import SCHEMA_VERSION
from posd.journal.settings import MIB
from posd.recorder import Recorder
from sync.outbox import Delivered, Outbox
from tests.cards import TEST_PANS, VISA_TEST_PAN, payment_meta, payment_secret
from tests.conftest import query_file

LEASE = 30.0


def capture(recorder: Recorder, count: int, pan: str = VISA_TEST_PAN, **meta: object) -> list[int]:
    return [
        recorder.record("card_payment", {**payment_meta(pan), **meta}, payment_secret(pan)).seq
        for _ in range(count)
    ]


def raw(state_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(state_dir / JOURNAL_FILE, isolation_level=None)


def test_pragmas_and_private_files(journal: Journal, state_dir: Path) -> None:
    conn = raw(state_dir)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal.durability() == {
        "journal_mode": "wal",
        "synchronous": "full",
        "secure_delete": True,
    }
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / JOURNAL_FILE).stat().st_mode) == 0o600


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
    assert query_file(journal, "SELECT remote_event_id FROM records WHERE seq = 1") == [("eb-1",)]


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
    raw(state_dir).execute("UPDATE records SET state = 'delivered' WHERE seq = 4")  # the CLI
    assert agrees() == (1, 2, 1)


def test_summary_reads_the_backlog_not_the_whole_journal(
    recorder: Recorder, journal: Journal
) -> None:
    """Every payment runs `summary` (offline limits): it must not scan the records table."""
    capture(recorder, 3)
    journal.mark_delivered([Delivered(1, "eb-1")], time.time())
    journal.summary()  # the one count of delivered records
    statements: list[str] = []
    # the backlog is read on the reader connection, the delivered count on the writer's
    connections = [journal._conn, journal._reader]
    for conn in connections:
        assert conn is not None
        conn.set_trace_callback(statements.append)
    try:
        journal.summary()
    finally:
        for conn in connections:
            assert conn is not None
            conn.set_trace_callback(None)
    plans = [
        str(row[3])
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
        for row in journal._conn.execute("EXPLAIN QUERY PLAN " + sql)
    ]
    assert any("records_pending" in plan for plan in plans), plans
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
    [(state, reason)] = query_file(journal, "SELECT state, last_error FROM records WHERE seq = 2")
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
    # what a journal written by schema version 1 lacks: the alarms (v2), the partial indexes (v3)
    conn.execute("DROP TABLE alarms")
    conn.execute("DROP INDEX records_pending")
    conn.execute("DROP INDEX records_quarantined")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with Journal.open(state_dir) as reopened:
        assert reopened.summary().pending == 3
        assert reopened.pending_alarms(10) == []
        assert reopened.verify().ok
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

    from posd.envelope import open_sealed
    from posd.keys.local import LocalKeySource
    from posd.keys.provider import RotatingKeyProvider

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
