"""Crash atomicity: SIGKILL an appending process at random moments, many times; the same with
a delivering process (capture and delivery are two processes on one journal) killed while an
appender goes on.

After every kill the journal reopens, every acknowledged record is present, intact (decrypts)
and chained, and `verify` passes. Appends that were not acknowledged may or may not be there,
but never half; no record is marked delivered that was never sent.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from posd.journal import Journal
from posd.journal.files import DELIVERY_FILE
from posd.keys.local import LocalKeySource, create_key_file
from tests.repo import REPO_ROOT
from wire.envelope import open_sealed

ROUNDS = 12
DELIVERER_ROUNDS = 10
MIN_RUN_SECONDS = 0.3
MAX_RUN_SECONDS = 1.0
START_TIMEOUT_SECONDS = 20.0


class Child:
    """A child process of this package (`module`), each stdout line kept split in `lines`."""

    def __init__(self, module: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"tests.posd.journal.{module}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO_ROOT,
        )
        self.lines: list[list[str]] = []
        self.first = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.split())
            self.first.set()

    def kill_after(self, rng: random.Random) -> None:
        """SIGKILL at a random moment once the child has said something."""
        try:
            assert self.first.wait(START_TIMEOUT_SECONDS), "the child never said anything"
            time.sleep(rng.uniform(MIN_RUN_SECONDS, MAX_RUN_SECONDS) * rng.random())
        finally:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self._reader.join(timeout=10)
        assert self.proc.returncode == -signal.SIGKILL

    def finish(self) -> None:
        """Wait for a child that ends by itself (exit 0)."""
        assert self.proc.wait(timeout=START_TIMEOUT_SECONDS) == 0
        self._reader.join(timeout=10)


def run_and_kill(
    state_dir: Path, key_file: Path, rng: random.Random, *extra: str
) -> list[tuple[int, str, int]]:
    """Start the appender (`extra`: its optional arguments), SIGKILL it once it has
    acknowledged something; return its acks."""
    child = Child("crash_appender", str(state_dir), str(key_file), *extra)
    child.kill_after(rng)
    return acks_of(child)


def acks_of(appender: Child) -> list[tuple[int, str, int]]:
    return [(int(seq), event_id, int(index)) for seq, event_id, index in appender.lines]


def test_sigkill_never_loses_an_acknowledged_record(tmp_path: Path) -> None:
    rng = random.Random(os.urandom(8))
    state_dir, key_file = tmp_path / "state", tmp_path / "kek.b64"
    create_key_file(key_file)
    source = LocalKeySource(key_file)
    acknowledged: dict[int, tuple[str, int]] = {}
    for _ in range(ROUNDS):
        for seq, event_id, index in run_and_kill(state_dir, key_file, rng):
            acknowledged[seq] = (event_id, index)
        with Journal.open(state_dir) as journal:
            report = journal.verify()
            assert report.ok, report.problems
            stored = {record.seq: record for record in journal.records()}
        missing = set(acknowledged) - set(stored)
        assert not missing, f"acknowledged records lost: {sorted(missing)[:5]}"
        for seq, (event_id, index) in acknowledged.items():
            record = stored[seq]
            assert record.event_id == event_id
            key = source.unwrap(record.data_key)
            assert (
                open_sealed(key, record.nonce, record.ciphertext, record.aad)
                == f"crash-payload-{index}".encode()
            )
        assert sorted(stored) == list(range(1, len(stored) + 1))
    assert len(acknowledged) > ROUNDS  # the child really appended between kills


def test_sigkill_of_a_deliverer_next_to_an_appender_loses_nothing(tmp_path: Path) -> None:
    """Capture and delivery in two processes: the deliverer (leases, "sends", marks delivered)
    is SIGKILLed at random moments while the appender goes on. The journal verifies after each
    kill, nothing is marked delivered that was never sent, and a last deliverer drains it all:
    every acknowledged record sent at least once."""
    rng = random.Random(os.urandom(8))
    state_dir, key_file = tmp_path / "state", tmp_path / "kek.b64"
    create_key_file(key_file)
    appender = Child("crash_appender", str(state_dir), str(key_file))
    sent: set[tuple[int, str]] = set()
    try:
        assert appender.first.wait(START_TIMEOUT_SECONDS), "appender never acknowledged"
        for _ in range(DELIVERER_ROUNDS):
            deliverer = Child("crash_deliverer", str(state_dir))
            deliverer.kill_after(rng)
            sent |= {(int(seq), event_id) for seq, event_id in deliverer.lines}
            with Journal.open(state_dir) as journal:
                report = journal.verify()
            assert report.ok, report.problems
            marked = delivered_seqs(state_dir)
            assert marked <= {seq for seq, _ in sent}, "marked delivered, never sent"
    finally:
        os.kill(appender.proc.pid, signal.SIGKILL)
        appender.proc.wait(timeout=10)
    last = Child("crash_deliverer", str(state_dir), "--drain")
    last.finish()
    sent |= {(int(seq), event_id) for seq, event_id in last.lines}
    acknowledged = {(seq, event_id) for seq, event_id, _ in acks_of(appender)}
    assert acknowledged - sent == set(), "acknowledged records never sent"
    with Journal.open(state_dir) as journal:
        assert journal.verify().ok
        summary = journal.summary()
    assert summary.pending == 0 and summary.quarantined == 0
    assert len(acknowledged) > DELIVERER_ROUNDS and len(sent) > DELIVERER_ROUNDS


def delivered_seqs(state_dir: Path) -> set[int]:
    conn = sqlite3.connect(f"file:{state_dir / DELIVERY_FILE}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT seq FROM outcomes WHERE state = 'delivered'").fetchall()
    finally:
        conn.close()
    return {seq for (seq,) in rows}
