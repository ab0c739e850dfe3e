"""The capture benchmark stays runnable: a tiny run of both scenarios through the lane's two
daemons (`posd run` and `posd sync run`), and one through capture alone.

Figures are not asserted here (performance is measured in bench/, never in tests); what is
asserted is that the benchmark measures what it says: every payment answered as captured by
the daemon (the script fails otherwise), the three sides of the idle scenario sampled alike,
the backlog in the journal when the draining daemons started, and every timed append's wait
for the journal's write lock read from the capture daemon.
"""

from __future__ import annotations

from pathlib import Path

from bench.capture_api import WARMUP_CAPTURES
from tests.bench.run import run_bench

CAPTURES, ROUNDS, BACKLOG = 16, 2, 200


def test_a_small_run_captures_idle_and_while_draining(tmp_path: Path) -> None:
    result = run_bench(
        "capture_api.py",
        "--captures",
        CAPTURES,
        "--rounds",
        ROUNDS,
        "--backlog",
        BACKLOG,
        "--dir",
        tmp_path,
    )
    idle = result["idle"]
    for side in ("api", "bare_journal_append", "raw_sqlite_insert_commit"):
        assert idle[side]["p99_ms"] >= idle[side]["p50_ms"] > 0, side
    assert idle["rounds"] == ROUNDS
    assert idle["api_append_lock_wait"]["appends"] == CAPTURES
    draining = result["draining"]
    assert draining["backlog"] == BACKLOG
    # the warm-up's captures are pending too while the delivery daemon is still starting
    assert 0 <= draining["pending_at_start"] <= BACKLOG + WARMUP_CAPTURES
    assert draining["p99_ms"] >= draining["p50_ms"] > 0
    waits = draining["append_lock_wait"]
    assert waits["appends"] == CAPTURES
    assert waits["appends"] >= waits["waited_over_1_ms"] >= waits["waited_over_5_ms"] >= 0
    assert result["delivery_daemon"]
    assert not list(tmp_path.iterdir())  # the scratch directory is gone


def test_capture_alone_delivers_nothing(tmp_path: Path) -> None:
    result = run_bench(
        "capture_api.py",
        *("--captures", CAPTURES, "--rounds", ROUNDS, "--backlog", BACKLOG),
        *("--without-delivery", "--dir", tmp_path),
    )
    assert not result["delivery_daemon"]
    draining = result["draining"]
    assert draining["pending_at_start"] >= BACKLOG  # and the warm-up payments
    assert draining["pending_at_end"] == draining["pending_at_start"] + CAPTURES
