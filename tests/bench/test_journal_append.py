"""The append benchmark stays runnable and says where the append's time goes: a tiny run,
both sides measured, and the profiled breakdown's parts adding up to its total.

Figures are not asserted (performance is measured in bench/, never in tests)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.bench.run import refused_bench, run_bench

RECORDS, ROUNDS, PROFILED = 40, 2, 20
PARTS = ("seal_aes_gcm", "chain_hash", "sql_insert", "sql_commit_fsync", "identity_write")


def test_a_small_run_reports_both_sides_and_the_breakdown(tmp_path: Path) -> None:
    result = run_bench(
        "journal_append.py",
        *("--records", RECORDS, "--rounds", ROUNDS, "--breakdown", PROFILED, "--dir", tmp_path),
    )
    for side in ("posd_append", "raw_sqlite_insert_commit"):
        assert result[side]["p99_ms"] >= result[side]["p50_ms"] > 0, side
    assert result["throughput_ratio"] > 0
    breakdown = result["breakdown_us"]
    assert breakdown["appends"] == PROFILED
    parts = breakdown["parts_us"]
    assert all(parts[name] > 0 for name in PARTS), parts
    assert sum(parts.values()) == pytest.approx(
        breakdown["profiled_total_us"], abs=0.1 * len(parts)
    )
    assert not list(tmp_path.iterdir())  # the scratch directory is gone


PAUSE_S = 0.05


def test_a_pause_sleeps_before_each_operation_and_stays_out_of_its_time(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_bench(
        "journal_append.py",
        *("--records", RECORDS, "--rounds", ROUNDS, "--breakdown", 0, "--dir", tmp_path),
        *("--pause", PAUSE_S),
    )
    assert time.monotonic() - started >= 2 * RECORDS * PAUSE_S  # both sides slept
    assert result["pause_before_each_s"] == PAUSE_S
    for side in ("posd_append", "raw_sqlite_insert_commit"):
        assert result[side]["mean_ms"] < PAUSE_S * 1000 / 2, side  # the sleep is not timed


def test_a_negative_pause_is_refused_by_name() -> None:
    assert "--pause must be 0 or more seconds" in refused_bench("journal_append.py", "--pause", -1)
