"""The simulated fleet stays runnable and honest: a tiny storm of simulated lanes (the real
`LanePacer` each) drains every lane exactly once, prints the real run's summary keys, and
the scenarios it is asked for (varied backlogs, lanes joining over time, a quota change)
change what it simulates. Figures are measured in bench/, not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fleet_scenarios import VARIED, scenario
from bench.fleet_sim import (
    SIMULATION_LIMIT_SECONDS,
    Republisher,
    Scenario,
    fair_finish_times,
    ideal_seconds,
    simulate,
)
from cloud.fair_rate import DEFAULT_WINDOW_SECONDS
from sync.settings import SyncSettings
from tests.bench.run import run_bench
from wire.fair_rate import DRAINED_AFTER_SECONDS, LaneHeard, sharing_lanes

TERMINALS, BACKLOG, QUOTA = 40, 5, 20.0
SUMMARY_KEYS = {"ratio_to_ideal", "throttled_share", "fairness_slowest_over_median"}
PNG_MAGIC = b"\x89PNG"


def test_a_small_simulated_storm_prints_the_real_runs_summary(tmp_path: Path) -> None:
    plot = tmp_path / "fleet.png"
    summary = run_bench(
        "fleet.py",
        "--simulated",
        "--terminals",
        TERMINALS,
        "--backlog",
        BACKLOG,
        "--quota",
        QUOTA,
        "--plot",
        plot,
    )
    assert summary["simulated"] is True
    assert set(summary["results"]) == {"posd", "naive"}
    for result in summary["results"].values():
        assert set(result) >= SUMMARY_KEYS
        assert result["terminals_not_drained"] == 0
        assert result["events_accepted"] == TERMINALS * BACKLOG
        assert result["ideal_seconds"] == TERMINALS * BACKLOG / QUOTA
    assert plot.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("share", [None, QUOTA / TERMINALS])
def test_every_lane_of_a_varied_joining_fleet_drains_once_through_a_quota_change(
    share: float | None,
) -> None:
    fleet = scenario(VARIED, TERMINALS, BACKLOG, QUOTA, 5.0, [(3.0, QUOTA / 2)], seed=1)
    assert len(set(fleet.backlogs)) > 1 and max(fleet.joins) > 0
    result = simulate(fleet, SyncSettings(), lambda now: share)
    assert result["terminals_not_drained"] == 0
    assert result["events_accepted"] == sum(fleet.backlogs)
    assert result["drain_seconds"] >= result["ideal_seconds"]


def test_the_fair_schedule_shares_the_quota_equally() -> None:
    # Two lanes of 10 and 30 records at 10/s: both at 5/s until the first is done at 2 s,
    # then the second alone at 10/s: done at 4 s.
    fleet = Scenario([10, 30], [0.0, 0.0], 10.0)
    assert fair_finish_times(fleet) == pytest.approx([2.0, 4.0])
    assert ideal_seconds(fleet) == pytest.approx(4.0)
    # Halving the quota at 1 s: 10 records by 1 s, the other 30 at 5/s: 7 s.
    assert ideal_seconds(Scenario([10, 30], [0.0, 0.0], 10.0, ((1.0, 5.0),))) == pytest.approx(7.0)
    # A lane joining later can only start then.
    assert ideal_seconds(Scenario([10, 10], [0.0, 5.0], 10.0)) == pytest.approx(6.0)


def test_the_republished_fair_rate_grows_as_lanes_finish_and_every_lane_still_drains() -> None:
    fleet = scenario(VARIED, TERMINALS, BACKLOG, QUOTA, 0.0, [], seed=1)
    consumer = Republisher(fleet, 1.0, period=1.0, reread=0.5)
    assert consumer.value == pytest.approx(QUOTA / TERMINALS)  # the day's count: all lanes
    result = simulate(fleet, SyncSettings(), consumer.read, republisher=consumer)
    assert result["terminals_not_drained"] == 0
    assert result["events_accepted"] == sum(fleet.backlogs)
    drained = max(heard.at for heard in consumer.heard) + DRAINED_AFTER_SECONDS + 1
    consumer.heard[:2] = [LaneHeard(drained, True)] * 2  # two lanes heard draining just now
    consumer.publish(drained)
    assert consumer.value == pytest.approx(QUOTA / 2)  # the quota over the lanes left


def test_the_consumer_leaves_a_lane_out_as_soon_as_its_watermark_reaches_its_backlog() -> None:
    # The side lane sent the backlog's checkpoints first; the last record delivered proves
    # the last of them: the consumer sees the lane caught up without waiting for a silence.
    fleet = Scenario([BACKLOG] * 2, [0.0] * 2, QUOTA)
    consumer = Republisher(fleet, 1.0, period=1.0, reread=0.5)
    consumer.delivered(0, 5.0, BACKLOG - 1, BACKLOG, True)
    consumer.publish(5.0)
    assert consumer.value == pytest.approx(QUOTA)  # the quota over the one lane left


class Recorded(Republisher):
    """The simulated consumer, each publication kept: (moment, rate, lanes sharing)."""

    def publish(self, now: float) -> None:
        super().publish(now)
        lanes = sharing_lanes(self.heard, now, DEFAULT_WINDOW_SECONDS)
        self.__dict__.setdefault("publications", []).append((now, self.value, lanes))


def test_the_consumer_publishes_a_quota_change_when_it_comes() -> None:
    fleet = scenario(VARIED, TERMINALS, BACKLOG, QUOTA, 0.0, [(3.0, QUOTA / 2)], seed=1)
    consumer = Recorded(fleet, 1.0, period=2 * SIMULATION_LIMIT_SECONDS, reread=0.5)
    simulate(fleet, SyncSettings(), consumer.read, republisher=consumer)
    publications = consumer.__dict__["publications"]
    assert [moment for moment, _, _ in publications] == [0.0, 3.0]  # the cut came, no period
    _, rate, lanes = publications[1]
    assert rate == pytest.approx(QUOTA / 2 / lanes)


def test_a_replay_joins_each_lane_when_the_real_runs_lanes_came_up() -> None:
    # Not when their first requests came: those are spread over the share's time after it.
    from bench.fleet import _replay_fleet

    fleet = Scenario([20] * 4, [0.0] * 4, QUOTA)
    run = {"lanes_up_over_time": [3.0, 1.0, 2.0, 4.0], "first_requests_over_time": [9.0] * 4}
    assert list(_replay_fleet(fleet, run).joins) == [0.0, 1.0, 2.0, 3.0]


def test_a_stalled_host_sends_nothing_then_everything_at_once() -> None:
    quiet = Scenario([BACKLOG] * TERMINALS, [0.0] * TERMINALS, QUOTA)
    stalled = Scenario([BACKLOG] * TERMINALS, [0.0] * TERMINALS, QUOTA, stalls=((1.0, 6.0),))
    share = QUOTA / TERMINALS
    before = simulate(quiet, SyncSettings(), lambda now: share)
    after = simulate(stalled, SyncSettings(), lambda now: share)
    heard = [moment for moment, _ in after["accepted_per_second_over_time"]]
    assert not [moment for moment in heard if 1.5 <= moment < 6.0]
    assert after["terminals_not_drained"] == 0
    assert after["throttled_share"] > before["throttled_share"]


def test_the_real_runs_stalls_are_its_quiet_seconds_with_a_backlog_left() -> None:
    from bench.fleet import _stalls

    busy = [(t / 2, 500.0) for t in range(0, 40) if not 10 <= t < 16]  # quiet 5.0-8.0 s
    run = {
        "accepted_per_second_over_time": [*busy, (19.5, 10.0)],  # the tail: not a stall
        "throttled_per_second_over_time": [],
        "backlog_over_time": [(0.0, 10_000), (18.0, 500), (20.0, 0)],
    }
    assert _stalls(run, 500.0) == [(5.0, 8.0)]
