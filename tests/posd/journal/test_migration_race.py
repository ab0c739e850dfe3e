"""Capture and delivery open one journal and, after an upgrade, start together: both find an
older schema, both wait for the write lock to migrate it, and the second must take the steps
the first already made as made (not fail on "table already exists" and exit)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from posd.journal import JOURNAL_FILE, Journal
from posd.journal.schema import SCHEMA_VERSION
from posd.recorder import Recorder
from tests.cards import VISA_TEST_PAN, payment_meta, payment_secret
from tests.repo import REPO_ROOT

OPENERS = 2
RECORDS = 3
BOTH_WAITING_S = 1.5  # long enough for both openers to reach the lock, far under busy_timeout
OPEN_TIMEOUT_S = 30.0

OPEN_AND_COUNT = """
import sys
from pathlib import Path
from posd.journal import Journal
with Journal.open(Path(sys.argv[1])) as journal:
    print(journal.summary().pending, flush=True)
"""


def test_two_daemons_migrating_at_once_both_open_the_journal(
    recorder: Recorder, journal: Journal, state_dir: Path
) -> None:
    for _ in range(RECORDS):
        recorder.record("card_payment", payment_meta(VISA_TEST_PAN), payment_secret(VISA_TEST_PAN))
    journal.close()
    holder = sqlite3.connect(state_dir / JOURNAL_FILE, isolation_level=None)
    holder.execute("DROP TABLE checkpoints")  # what a v3 journal lacks (v4 makes it)
    holder.execute("ALTER TABLE data_keys DROP COLUMN last_seq")  # and v5
    holder.execute("PRAGMA user_version = 3")
    holder.execute("BEGIN IMMEDIATE")  # both openers queue for the lock behind this
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AND_COUNT, str(state_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        for _ in range(OPENERS)
    ]
    time.sleep(BOTH_WAITING_S)
    holder.execute("COMMIT")
    holder.close()
    results = [opener.communicate(timeout=OPEN_TIMEOUT_S) for opener in openers]
    assert [opener.returncode for opener in openers] == [0] * OPENERS, results
    assert [out.strip() for out, _ in results] == [str(RECORDS)] * OPENERS
    with Journal.open(state_dir) as reopened:
        assert reopened.verify().ok
    version = sqlite3.connect(state_dir / JOURNAL_FILE).execute("PRAGMA user_version")
    assert version.fetchone()[0] == SCHEMA_VERSION
