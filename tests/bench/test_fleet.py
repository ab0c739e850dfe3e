"""The fleet benchmark stays runnable: a tiny storm drains every terminal under both policies.

Figures are not asserted here (performance is measured in bench/, never in tests); what is
asserted is that the benchmark measures what it says: every event accepted exactly once by the
quota-enforcing endpoint, every terminal drained, a plot written.
"""

from __future__ import annotations

from pathlib import Path

from tests.bench.run import run_bench

TERMINALS, BACKLOG = 6, 4
PNG_MAGIC = b"\x89PNG"


def test_a_small_storm_drains_every_terminal_under_both_policies(tmp_path: Path) -> None:
    plot = tmp_path / "fleet.png"
    summary = run_bench(
        "fleet.py",
        "--terminals",
        TERMINALS,
        "--backlog",
        BACKLOG,
        "--quota",
        100,
        "--workers",
        2,
        "--plot",
        plot,
    )
    assert set(summary["results"]) == {"posd", "naive"}
    for result in summary["results"].values():
        assert result["terminals"] == TERMINALS and result["terminals_not_drained"] == 0
        assert result["events_accepted"] == TERMINALS * BACKLOG
        assert result["ideal_seconds"] == TERMINALS * BACKLOG / 100
    assert plot.read_bytes().startswith(PNG_MAGIC)


def test_validate_replays_the_real_storm_with_each_workers_stalls(tmp_path: Path) -> None:
    summary = run_bench(
        "fleet.py",
        *("--terminals", TERMINALS, "--backlog", BACKLOG, "--quota", 100, "--workers", 2),
        *("--policies", "posd", "--validate", "--plot", tmp_path / "fleet.png"),
    )
    replayed = summary["simulated_results"]["posd"]
    assert replayed["terminals"] == TERMINALS and replayed["terminals_not_drained"] == 0
    workers = summary["agreement"]["calibrated_from_the_real_run"]["worker_stalls"]["posd"]
    covered = [
        lane for worker in workers for lane in range(worker["lanes"][0], worker["lanes"][1] + 1)
    ]
    assert covered == list(range(TERMINALS))  # two workers, every lane once, in order
    assert all(worker["stalls"] >= 0 and worker["stalled_seconds"] >= 0 for worker in workers)
    figures = summary["agreement"]["simulated_over_real_minus_one"]["posd"]
    assert set(figures) == {"drain_seconds", "throttled_share", "within"}
