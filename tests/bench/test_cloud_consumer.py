"""The consumer benchmark stays runnable and measures what it says (figures are not asserted:
performance is measured in bench/, never in tests)."""

from __future__ import annotations

from tests.bench.run import run_bench

RECORDS = 4


def test_the_consumer_benchmark_files_each_record_once_and_proves_its_range_both_ways() -> None:
    result = run_bench("cloud_consumer.py", "--records", RECORDS)
    assert result["baseline"]["records"] == RECORDS
    for variant in ("unchecked", "consumer"):
        run = result[variant]
        assert run["records"] == RECORDS
        # every record and the checkpoint, each delivered copies_each times
        assert run["copies_counted"] == (RECORDS + 1) * result["copies_each"]
        assert (run["checkpoints_complete"], run["alarms"], run["failures"]) == (1, 0, 0)
    assert result["verify_us_per_checkpoint"] > 0
