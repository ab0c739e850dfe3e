"""The journal survives its own damage: one bad record never stops delivery of the others.

Each test damages a real journal file the way an adversary or a failing disk would, then runs
the technician's commands (`posd sync flush|status`, `posd journal stats|verify`) for real.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from posd.cli.main import main
from posd.journal import JOURNAL_FILE, Journal, JournalSettings
from tests.sync.conftest import (
    CLI_RECORDS,
    Route,
    event_ids,
    receive_all,
    record_events,
    record_payments,
)
from wire.events import ALARM_DETAIL_TYPE, ALARM_SCHEMA, EVENT_SCHEMA

MORE_RECORDS = 288  # with the fixture's 12: 300 records, as in the report
DAMAGED_SEQ = 42


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, json.loads(captured.out)


def damage_file(path: Path, sql: str, *args: object) -> None:
    """Change the journal file behind the daemon's back, as an attacker with the file would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute(sql, args)
    conn.close()


def damage(config_file: Path, sql: str, *args: object) -> None:
    damage_file(config_file.parent / "state" / JOURNAL_FILE, sql, *args)


def test_unparseable_meta_quarantines_one_record_and_delivers_the_rest(
    config_file: Path,
    capsys: pytest.CaptureFixture[str],
    route: Route,
    sqs_client: Any,
) -> None:
    record_payments(config_file.parent, MORE_RECORDS)
    total = CLI_RECORDS + MORE_RECORDS
    damage(config_file, "UPDATE records SET meta = 'garbage' WHERE seq = ?", DAMAGED_SEQ)

    for command in (("sync", "status"), ("journal", "stats")):
        code, _ = run(capsys, *command, "--config", str(config_file))
        assert code == 0, command

    code, flushed = run(capsys, "sync", "flush", "--config", str(config_file))
    assert (flushed["delivered"], flushed["quarantined"]) == (total - 1, 1)
    assert code == 0 and flushed["completed"]
    checkpoints = total // JournalSettings().checkpoint_every_records  # sent beside records
    received = receive_all(sqs_client, route.queue_url, total - 1 + checkpoints)
    assert len(set(event_ids(record_events(received)))) == total - 1

    code, status = run(capsys, "sync", "status", "--config", str(config_file))
    assert (status["pending"], status["quarantined"]) == (0, 1)


def test_huge_amounts_never_break_the_pending_sum(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damage(config_file, "UPDATE records SET meta = json_set(meta, '$.amount', 4611686018427387904)")
    code, status = run(capsys, "sync", "status", "--config", str(config_file))
    assert code == 0
    assert status["pending"] == CLI_RECORDS
    code, stats = run(capsys, "journal", "stats", "--config", str(config_file))
    assert code == 0 and stats["records"]["pending"] == CLI_RECORDS


def test_records_quarantined_while_leasing_are_counted(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damage(config_file, "DELETE FROM data_keys")
    code, flushed = run(capsys, "sync", "flush", "--config", str(config_file))
    assert flushed["quarantined"] == CLI_RECORDS
    assert flushed["delivered"] == 0
    assert code == 0  # quarantined records are not pending: the backlog is done
    _, status = run(capsys, "sync", "status", "--config", str(config_file))
    assert (status["pending"], status["quarantined"]) == (0, CLI_RECORDS)


def test_tampered_records_are_quarantined_with_an_alarm_never_forwarded(
    config_file: Path,
    capsys: pytest.CaptureFixture[str],
    route: Route,
    sqs_client: Any,
) -> None:
    flipped, altered = 5, 8
    damage(config_file, "UPDATE records SET ciphertext = randomblob(64) WHERE seq = ?", flipped)
    damage(
        config_file,
        "UPDATE records SET meta = json_set(meta, '$.amount', 1) WHERE seq = ?",
        altered,
    )
    code, flushed = run(capsys, "sync", "flush", "--config", str(config_file))
    assert code == 0
    assert (flushed["delivered"], flushed["quarantined"]) == (CLI_RECORDS - 2, 2)
    received = receive_all(sqs_client, route.queue_url, CLI_RECORDS)  # records + 2 alarms
    records = [e for e in received if e["detail"]["schema"] == EVENT_SCHEMA]
    alarms = [e for e in received if e["detail"]["schema"] == ALARM_SCHEMA]
    assert sorted({e["detail"]["seq"] for e in records}) == [
        seq for seq in range(1, CLI_RECORDS + 1) if seq not in (flipped, altered)
    ]
    # The cloud hears of each tampered record: seq and what failed, never a payload.
    assert sorted(e["detail"]["seq"] for e in alarms) == [flipped, altered]
    for alarm in alarms:
        assert alarm["detail-type"] == ALARM_DETAIL_TYPE
        assert alarm["detail"]["alarm"] == "tampered_record"
        assert "chain mismatch" in alarm["detail"]["detail"]
        assert "envelope" not in alarm["detail"] and "meta" not in alarm["detail"]
    _, status = run(capsys, "sync", "status", "--config", str(config_file))
    assert (status["quarantined"], status["tampered"]) == (2, 2)
    with Journal.open(config_file.parent / "state") as journal:
        assert journal.pending_alarms(10) == []  # both accepted by EventBridge


def test_lease_names_the_tampered_record_and_what_failed(journal: Journal, recorder: Any) -> None:
    for _ in range(4):
        recorder.record("card_payment", {"amount": 100, "currency": "EUR"}, b"secret")
    damage_file(journal.path, "UPDATE records SET nonce = zeroblob(12) WHERE seq = 2")
    lease = journal.lease(10, time.time(), 30.0)
    assert [r.seq for r in lease.records] == [1, 3, 4]
    [refused] = lease.quarantined
    assert refused.seq == 2 and refused.tampered and "chain mismatch" in refused.reason
    assert journal.summary().tampered == 1
    [alarm] = journal.pending_alarms(10)  # journaled for the cloud in the same transaction
    assert (alarm.seq, alarm.kind) == (2, "tampered_record") and "chain" in alarm.detail


PAGE_SIZE = 4096


def corrupt_a_page(config_file: Path, seq: int) -> None:
    """Overwrite the table page that holds record `seq`, as a failing disk would."""
    path = config_file.parent / "state" / JOURNAL_FILE
    conn = sqlite3.connect(path)
    [(event_id,)] = conn.execute("SELECT event_id FROM records WHERE seq = ?", (seq,)).fetchall()
    conn.close()  # the last connection checkpoints: every row is in the database file now
    data = path.read_bytes()
    offset = data.find(event_id.encode())
    while offset != -1:
        page = offset // PAGE_SIZE
        if b'"currency"' in data[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]:  # a table leaf
            break
        offset = data.find(event_id.encode(), offset + 1)
    assert offset != -1, "no table page holds the record"
    with path.open("r+b") as handle:
        handle.seek(page * PAGE_SIZE)
        handle.write(bytes(range(256)) * (PAGE_SIZE // 256))


def test_a_corrupt_page_is_reported_by_verify_and_flush_delivers_what_it_can_read(
    config_file: Path,
    capsys: pytest.CaptureFixture[str],
    route: Route,
    sqs_client: Any,
) -> None:
    record_payments(config_file.parent, MORE_RECORDS)
    total = CLI_RECORDS + MORE_RECORDS
    corrupt_a_page(config_file, DAMAGED_SEQ)

    code, report = run(capsys, "journal", "verify", "--config", str(config_file))
    assert code == 1 and not report["ok"]
    kinds = {problem["kind"] for problem in report["problems"]}
    assert "structure" in kinds or "unreadable" in kinds
    unreadable = {p["seq"] for p in report["problems"] if p["kind"] == "unreadable"}
    assert report["records_checked"] + len(unreadable) == total

    code, status = run(capsys, "sync", "status", "--config", str(config_file))
    assert code == 0 and status["unreadable"] == len(unreadable) > 0
    code, flushed = run(capsys, "sync", "flush", "--config", str(config_file), "--timeout", "60")
    assert code == 0 and flushed["completed"], flushed
    assert flushed["delivered"] == report["records_checked"] == total - len(unreadable)
    assert flushed["quarantined"] == len(unreadable)
    checkpoints = total // JournalSettings().checkpoint_every_records  # sent beside records
    events = receive_all(sqs_client, route.queue_url, flushed["delivered"] + checkpoints)
    assert len(set(event_ids(record_events(events)))) == flushed["delivered"]


def test_leases_are_released_around_a_damaged_page(config_file: Path) -> None:
    """Found by the daemon-level damage test: SIGTERM released leases in one statement, which
    a damaged page broke (traceback, exit 1). Now every readable lease is released."""
    record_payments(config_file.parent, MORE_RECORDS)
    corrupt_a_page(config_file, DAMAGED_SEQ)
    with Journal.open(config_file.parent / "state") as journal:
        now = time.time()
        leased = journal.lease(CLI_RECORDS + MORE_RECORDS, now, 60.0).records
        assert leased
        assert journal.release_leases() == len(leased)
        again = journal.lease(CLI_RECORDS + MORE_RECORDS, now, 60.0).records
        assert [r.seq for r in again] == [r.seq for r in leased]
