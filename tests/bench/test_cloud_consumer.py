"""The consumer benchmark stays runnable and measures what it says (figures are not asserted:
performance is measured in bench/, never in tests)."""

from __future__ import annotations

from tests.bench.run import run_bench

RECORDS = 4


def test_the_consumer_benchmark_files_each_record_once_and_counts_every_copy() -> None:
    result = run_bench("cloud_consumer.py", "--records", RECORDS)
    assert result["baseline"]["records"] == result["consumer"]["records"] == RECORDS
    assert result["consumer"]["copies_counted"] == RECORDS * result["copies_each"]
    assert result["consumer"]["failures"] == 0
