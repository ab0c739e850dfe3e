"""The cost-growth benchmark stays runnable: two small journals, each drained to the end by
a fresh engine process (it failed unseen once: a setting the engine refuses killed the drain
child, and the benchmark waited 15 minutes for figures that never came)."""

from __future__ import annotations

from tests.bench.run import run_bench

SIZES = (300, 600)
BACKLOG = 50


def test_small_journals_drain_to_the_end_and_report_each_size() -> None:
    result = run_bench(
        "cost_growth.py",
        "--sizes",
        *SIZES,
        "--backlog",
        BACKLOG,
        "--appends",
        20,
        "--rounds",
        1,
        "--purge-expired",
        20,
    )
    text = repr(result)
    for size in SIZES:
        assert str(size) in text
    assert f"'drained': {BACKLOG}" in text, text[:800]
