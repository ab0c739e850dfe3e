"""The wall clock jumps (NTP stepping it, an RTC battery gone flat): through the journal's
injectable clock, seq and event_id stay strictly increasing, within a process and across a
restart, and a lease taken before the clock went back does not hold records hostage for the
size of the jump."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from posd.journal import Journal
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from tests.cards import STORE_ID, TERMINAL_ID, VISA_TEST_PAN, payment_meta
from tests.repo import REPO_ROOT

REPO = REPO_ROOT
HOUR = 3600.0
DAY = 24 * HOUR
START = 1_900_000_000.0
LEASE_S = 60.0
# (wall clock step before the next record) forwards and backwards, small and large
JUMPS = (0.0, 0.0, -HOUR, 0.001, -DAY, 5 * DAY, -0.5, 0.0, -30 * DAY, 1.0)


class WallClock:
    """A wall clock a test moves, as an injectable `clock` (seconds since the epoch)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(journal: Journal, keys: RotatingKeyProvider) -> tuple[int, str]:
    recorder = Recorder(journal, keys, STORE_ID, TERMINAL_ID)
    written = recorder.record("payment.card", payment_meta(VISA_TEST_PAN), b"{}")
    return written.seq, written.event_id


def test_seq_and_event_id_increase_whatever_the_wall_clock_does(
    state_dir: Path, local_key_provider: RotatingKeyProvider
) -> None:
    clock = WallClock(START)
    ids: list[tuple[int, str]] = []
    with Journal.open(state_dir, clock=clock) as journal:
        for jump in JUMPS:
            clock.now += jump
            ids.append(record(journal, local_key_provider))
    ids.append(record_in_a_new_process(state_dir, START - 365 * DAY))  # a year back, restarted
    seqs = [seq for seq, _ in ids]
    event_ids = [event_id for _, event_id in ids]
    assert seqs == list(range(1, len(ids) + 1))
    assert event_ids == sorted(event_ids) and len(set(event_ids)) == len(event_ids)


CHILD = """
import sys
from pathlib import Path
from posd.journal import Journal
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
state_dir, key_file, wall = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
source = LocalKeySource(key_file, create=True)
with Journal.open(state_dir, clock=lambda: wall) as journal, RotatingKeyProvider(source) as keys:
    assert keys.wait_ready(30)
    written = Recorder(journal, keys, "store", "lane").record("payment.card", {}, b"{}")
    print(written.seq, written.event_id)
"""


def record_in_a_new_process(state_dir: Path, wall: float) -> tuple[int, str]:
    """A restart: a fresh process (nothing remembered in memory) with the clock at `wall`."""
    key_file = state_dir.parent / "kek.b64"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(state_dir), str(key_file), str(wall)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    seq, event_id = done.stdout.split()
    return int(seq), event_id


def test_a_lease_from_before_the_clock_went_back_is_void(
    state_dir: Path, local_key_provider: RotatingKeyProvider
) -> None:
    clock = WallClock(START)
    with Journal.open(state_dir, clock=clock) as journal:
        seq, _ = record(journal, local_key_provider)
        assert [r.seq for r in journal.lease(10, clock.now, LEASE_S).records] == [seq]
        assert journal.lease(10, clock.now + 1, LEASE_S).records == []  # leased: hidden
        clock.now -= HOUR  # the sender died with the lease; the clock went back an hour
        again = journal.lease(10, clock.now, LEASE_S).records
        assert [r.seq for r in again] == [seq]  # not an hour later
        assert journal.lease(10, clock.now + 1, LEASE_S).records == []  # leased anew
