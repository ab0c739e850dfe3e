"""Crash atomicity: SIGKILL an appending process at random moments, many times.

After every kill the journal reopens, every acknowledged record is present, intact (decrypts)
and chained, and `verify` passes. Appends that were not acknowledged may or may not be there,
but never half.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from posd.journal import Journal
from posd.keys.local import LocalKeySource, create_key_file
from tests.repo import REPO_ROOT
from wire.envelope import open_sealed

ROUNDS = 12
MIN_RUN_SECONDS = 0.3
MAX_RUN_SECONDS = 1.0
START_TIMEOUT_SECONDS = 20.0


def run_and_kill(
    state_dir: Path, key_file: Path, rng: random.Random, *extra: str
) -> list[tuple[int, str, int]]:
    """Start the appender (`extra`: its optional arguments), SIGKILL it once it has
    acknowledged something; return its acks."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.posd.journal.crash_appender",
            str(state_dir),
            str(key_file),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO_ROOT,
    )
    assert child.stdout is not None
    acks: list[tuple[int, str, int]] = []
    first_ack = threading.Event()

    def reader() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            seq, event_id, index = line.split()
            acks.append((int(seq), event_id, int(index)))
            first_ack.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert first_ack.wait(START_TIMEOUT_SECONDS), "appender never acknowledged a record"
        time.sleep(rng.uniform(MIN_RUN_SECONDS, MAX_RUN_SECONDS) * rng.random())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        thread.join(timeout=10)
    assert child.returncode == -signal.SIGKILL
    return acks


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
