"""Child process for the disk-full logging test: settles leased records while no file may grow.

Usage: python -m tests.sync.disk_full_child STATE_DIR KEY_FILE ROUNDS

Records are captured and leased, then the process's file size limit (RLIMIT_FSIZE) is set one
byte past the end of the write-ahead log of delivery's database (`posd.journal.outcomes`),
where the next settlement's pages go: it cannot grow, as on a full disk. (The kernel answers
EFBIG, not ENOSPC, so SQLite says `disk I/O error`, not `database or disk is full`: both are
the same `sqlite3.DatabaseError` to the journal, and a real ENOSPC needs a file system of its
own to fill, which needs root.)

Each round marks the leased records delivered, as the delivery engine does once a second;
after `ROUNDS` rounds the journal's clock moves past the summary interval and one more round
runs; then the limit is lifted and a last round writes (the failures end). The logs (JSON,
one line each) go to stderr.
"""

from __future__ import annotations

import resource
import signal
import sys
from pathlib import Path

from posd.journal import Journal
from posd.journal.files import DELIVERY_FILE
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.logs import configure_logging
from posd.recorder import Recorder
from sync.outbox import Delivered
from tests.cards import STORE_ID, TERMINAL_ID, VISA_TEST_PAN, payment_meta

RECORDS = 3
LEASE_SECONDS = 3600.0
SUMMARY_STEP_S = 301.0  # past the 5-minute summary interval
ONE_BYTE = 1
WAL_SUFFIX = "-wal"


class StepClock:
    """The journal's clock, moved by hand (rounds take no real time)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def main() -> None:
    configure_logging("info", force_json=True)
    state_dir, key_file, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    clock = StepClock()
    source = LocalKeySource(key_file)
    with (
        RotatingKeyProvider(source, source) as keys,
        Journal.open(state_dir, clock=clock) as journal,
    ):
        recorder = Recorder(journal, keys, STORE_ID, TERMINAL_ID)
        for index in range(RECORDS):
            recorder.record("card_payment", payment_meta(VISA_TEST_PAN), f"s{index}".encode())
        leased = journal.lease(RECORDS, clock(), LEASE_SECONDS).records
        delivered = [Delivered(record.seq, f"remote-{record.seq}") for record in leased]
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write, not a killed process
        wal_end = (state_dir / f"{DELIVERY_FILE}{WAL_SUFFIX}").stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (wal_end + ONE_BYTE, resource.RLIM_INFINITY))
        for _ in range(rounds):
            journal.mark_delivered(delivered, clock())
            clock.now += 1.0
        clock.now += SUMMARY_STEP_S
        journal.mark_delivered(delivered, clock())
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        journal.mark_delivered(delivered, clock())


if __name__ == "__main__":
    main()
