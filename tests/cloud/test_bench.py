"""The consumer benchmark stays runnable and measures what it says (figures are not asserted:
performance is measured in bench/, never in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECORDS = 4


def test_the_consumer_benchmark_files_each_record_once_and_counts_every_copy() -> None:
    finished = subprocess.run(
        [sys.executable, str(REPO / "bench" / "cloud_consumer.py"), "--records", str(RECORDS)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    result = json.loads(finished.stdout)
    assert result["baseline"]["records"] == result["consumer"]["records"] == RECORDS
    assert result["consumer"]["copies_counted"] == RECORDS * result["copies_each"]
    assert result["consumer"]["failures"] == 0
