"""The front benchmark stays runnable: a tiny run of both fronts through `posd run`.

Figures are not asserted (performance is measured in bench/, never in tests); what is
asserted is that the run measured both fronts with the hostile clients held.
"""

from __future__ import annotations

from tests.bench.run import run_bench


def test_a_small_run_measures_both_fronts() -> None:
    result = run_bench(
        "api_front.py",
        *("--idle", 10, "--slowloris", 10, "--flushes", 3),
        *("--payments", 3, "--cancels", 1, "--answer-timeout-s", 2),
    )
    for front in ("waitress (before)", "uvicorn (now)"):
        figures = result[front]
        assert figures["payments"]["count"] == 3
        assert figures["payments_nothing_held"]["answered"] == 3
        assert figures["cancels"]["count"] == 1
    assert result["uvicorn (now)"]["payments"]["answered"] == 3
