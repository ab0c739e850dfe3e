"""A journal that was emptied, replaced or lost its WAL is refused, never silently restarted.

Each case copies a live journal's files the way a crash, a bad restore or an adversary would
leave them, then opens the copy: the daemon's open refuses it, `verify` says what is missing,
and `posd journal reset --accept-loss` makes it usable without ever reusing a seq.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from posd.journal import JOURNAL_FILE, Journal
from posd.journal.identity import IDENTITY_FILE, JournalIdentityError
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from tests.cards import STORE_ID, TERMINAL_ID, VISA_TEST_PAN, payment_meta, payment_secret

WAL = f"{JOURNAL_FILE}-wal"


def posd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posd", *args], capture_output=True, text=True, timeout=120
    )


def capture(journal: Journal, keys: RotatingKeyProvider, count: int) -> list[int]:
    recorder = Recorder(journal, keys, STORE_ID, TERMINAL_ID)
    meta, secret = payment_meta(VISA_TEST_PAN), payment_secret(VISA_TEST_PAN)
    return [recorder.record("card_payment", meta, secret).seq for _ in range(count)]


def checkpoint(state_dir: Path) -> None:
    """Move what the WAL holds into the database file, as SQLite's auto-checkpoint does."""
    conn = sqlite3.connect(state_dir / JOURNAL_FILE)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def snapshot(state_dir: Path, target: Path) -> Path:
    """The state dir's files as a crash at this instant leaves them (the journal is open)."""
    target.mkdir(mode=0o700)
    for path in state_dir.iterdir():
        shutil.copy2(path, target / path.name)
    return target


@pytest.fixture
def damaged_tail(
    state_dir: Path, tmp_path: Path, local_key_provider: RotatingKeyProvider
) -> tuple[Path, int]:
    """A journal whose records 1-10 are in the database file and 11-20 only in the WAL, with
    the WAL cut in the middle of a frame. Returns the copy and the highest seq issued."""
    with Journal.open(state_dir) as journal:
        capture(journal, local_key_provider, 10)
        checkpoint(state_dir)
        issued = capture(journal, local_key_provider, 10)[-1]
        copy = snapshot(state_dir, tmp_path / "copy")
    wal = copy / WAL
    os.truncate(wal, wal.stat().st_size // 2 + 3)
    return copy, issued


def test_a_wal_cut_mid_frame_is_refused_and_verify_reports_the_lost_tail(
    damaged_tail: tuple[Path, int],
) -> None:
    copy, issued = damaged_tail
    with pytest.raises(JournalIdentityError, match=rf"seq {issued} was issued"):
        Journal.open(copy)
    report = posd("journal", "verify", "--state-dir", str(copy), "--json")
    assert report.returncode == 1, report.stderr
    problems = json.loads(report.stdout)["problems"]
    assert [p["kind"] for p in problems] == ["lost_tail"]
    assert f"..{issued}" in problems[0]["detail"]


def test_accepting_a_lost_tail_never_reuses_a_seq(
    damaged_tail: tuple[Path, int], local_key_provider: RotatingKeyProvider
) -> None:
    copy, issued = damaged_tail
    reset = posd("journal", "reset", "--accept-loss", "--state-dir", str(copy), "--json")
    assert reset.returncode == 0, reset.stderr
    accepted = json.loads(reset.stdout)
    assert accepted["action"] == "gap_accepted" and accepted["lost_through"] == issued
    with Journal.open(copy) as journal:
        assert capture(journal, local_key_provider, 2) == [issued + 1, issued + 2]
        report = journal.verify()
        assert report.ok, report.problems
        assert journal.lease(100, 2e9, 30.0).quarantined == []  # the gap is not tampering


def test_a_wal_cut_to_its_header_is_refused_not_started_over(
    state_dir: Path, tmp_path: Path, local_key_provider: RotatingKeyProvider
) -> None:
    with Journal.open(state_dir) as journal:
        issued = capture(journal, local_key_provider, 20)[-1]
        copy = snapshot(state_dir, tmp_path / "copy")
    os.truncate(copy / WAL, 20)
    with pytest.raises(JournalIdentityError, match=r"emptied or replaced|were committed"):
        Journal.open(copy)
    status = posd("journal", "stats", "--state-dir", str(copy))
    assert status.returncode == 2 and "Traceback" not in status.stderr
    assert "posd journal reset --accept-loss" in status.stderr
    assert f"up to {issued}" in status.stderr or f"seq {issued}" in status.stderr


def test_an_emptied_journal_starts_again_after_the_last_seq_ever_issued(
    state_dir: Path, local_key_provider: RotatingKeyProvider
) -> None:
    with Journal.open(state_dir) as journal:
        first_id = journal.journal_id
        issued = capture(journal, local_key_provider, 5)[-1]
    for name in (JOURNAL_FILE, WAL, f"{JOURNAL_FILE}-shm"):
        (state_dir / name).unlink(missing_ok=True)
    with pytest.raises(JournalIdentityError, match="emptied or replaced"):
        Journal.open(state_dir)
    accepted = Journal.accept_loss(state_dir)
    assert accepted.action == "new_journal" and accepted.journal_id != first_id
    with Journal.open(state_dir) as journal:
        assert journal.journal_id == accepted.journal_id
        assert capture(journal, local_key_provider, 1) == [issued + 1]
        assert journal.verify().ok


def test_a_foreign_journal_is_set_aside_not_adopted(
    state_dir: Path, tmp_path: Path, local_key_provider: RotatingKeyProvider
) -> None:
    other = tmp_path / "other-lane"
    with Journal.open(other) as journal:
        capture(journal, local_key_provider, 3)
    with Journal.open(state_dir) as journal:
        issued = capture(journal, local_key_provider, 4)[-1]
    shutil.copy2(other / JOURNAL_FILE, state_dir / JOURNAL_FILE)
    with pytest.raises(JournalIdentityError, match="not this terminal's journal"):
        Journal.open(state_dir)
    accepted = Journal.accept_loss(state_dir)
    assert accepted.action == "new_journal" and accepted.set_aside is not None
    assert Path(accepted.set_aside).is_file()  # kept for a technician, never deleted
    with Journal.open(state_dir) as journal:
        assert capture(journal, local_key_provider, 1) == [issued + 1]


def test_identity_file_tracks_the_highest_seq(
    state_dir: Path, local_key_provider: RotatingKeyProvider
) -> None:
    with Journal.open(state_dir) as journal:
        capture(journal, local_key_provider, 7)
        document = json.loads((state_dir / IDENTITY_FILE).read_text())
        assert document == {"journal_id": journal.journal_id, "high_water_seq": 7}
    assert oct((state_dir / IDENTITY_FILE).stat().st_mode & 0o777) == "0o660"  # both daemons


def test_a_healthy_journal_needs_no_reset(state_dir: Path) -> None:
    Journal.open(state_dir).close()
    assert Journal.accept_loss(state_dir).action == "none"
