"""The simulated fleet stays runnable and honest: a tiny storm of simulated lanes (the real
`LanePacer` each) drains every lane exactly once, prints the real run's summary keys, and
the scenarios it is asked for (varied backlogs, lanes joining over time, a quota change)
change what it simulates. Figures are measured in bench/, not asserted here."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from bench.fleet_scenarios import VARIED, scenario
from bench.fleet_sim import (
    SIMULATION_LIMIT_SECONDS,
    Republisher,
    Scenario,
    StalledLanes,
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


def test_a_replay_joins_each_lane_as_its_real_lane_came_up_and_stalls_its_workers_lanes() -> None:
    # Not when their first requests came: those are spread over the share's time after it.
    from bench.fleet import _replay_fleet

    fleet = Scenario([20] * 4, [0.0] * 4, QUOTA)
    run = {
        "lanes_up_by_lane": [3.5, 1.5, 2.5, 4.5],
        "worker_stalls_over_time": [(0, 2, [(5.5, 6.5)]), (2, 2, [])],
    }
    replay = _replay_fleet(fleet, run)
    assert list(replay.joins) == [2.0, 0.0, 1.0, 3.0]
    assert replay.stalls == (StalledLanes(0, 2, ((4.0, 5.0),)), StalledLanes(2, 2, ()))
    assert [replay.resumed(4.5, lane) for lane in range(4)] == [5.0, 5.0, 4.5, 4.5]


def test_a_replay_needs_the_real_runs_lanes_one_for_one() -> None:
    from bench.fleet import _replay_fleet

    run = {"lanes_up_by_lane": [0.0] * 3, "worker_stalls_over_time": []}
    with pytest.raises(ValueError, match="3 real lanes on 4 lanes"):
        _replay_fleet(Scenario([20] * 4, [0.0] * 4, QUOTA), run)


def test_stalled_lanes_send_nothing_then_everything_at_once() -> None:
    everyone = (StalledLanes(0, TERMINALS, ((1.0, 6.0),)),)
    quiet = Scenario([BACKLOG] * TERMINALS, [0.0] * TERMINALS, QUOTA)
    stalled = Scenario([BACKLOG] * TERMINALS, [0.0] * TERMINALS, QUOTA, stalls=everyone)
    share = QUOTA / TERMINALS
    before = simulate(quiet, SyncSettings(), lambda now: share)
    after = simulate(stalled, SyncSettings(), lambda now: share)
    heard = [moment for moment, _ in after["accepted_per_second_over_time"]]
    assert not [moment for moment in heard if 1.5 <= moment < 6.0]
    assert after["terminals_not_drained"] == 0
    assert after["throttled_share"] > before["throttled_share"]


def test_half_the_lanes_stalled_leave_the_other_half_sending() -> None:
    half = TERMINALS // 2
    stalled = Scenario(
        [BACKLOG] * TERMINALS,
        [0.0] * TERMINALS,
        QUOTA,
        stalls=(StalledLanes(0, half, ((1.0, 6.0),)),),
    )
    result = simulate(stalled, SyncSettings(), lambda now: QUOTA / TERMINALS)
    during = sum(
        rate for moment, rate in result["accepted_per_second_over_time"] if 1.5 <= moment < 6.0
    )
    assert during > 0
    assert result["terminals_not_drained"] == 0


def test_a_worker_records_the_time_its_process_ran_nothing() -> None:
    from bench.fleet import STALL_LATE_SECONDS, StallRecorder

    shuffled = list(range(2_000_000))
    random.Random(0).shuffle(shuffled)
    start = time.time()
    recorder = StallRecorder(start)
    recorder.start()
    time.sleep(0.05)
    held_from = time.time() - start
    sorted(shuffled)  # C code holding the GIL: no other thread of the process runs
    held_until = time.time() - start
    time.sleep(0.05)
    stalls = recorder.stop()
    assert held_until - held_from > STALL_LATE_SECONDS
    assert any(
        since <= held_from + STALL_LATE_SECONDS and until >= held_until - 0.01
        for since, until in stalls
    ), (held_from, held_until, stalls)


def test_stalls_closer_than_the_merge_gap_are_one() -> None:
    from bench.fleet import STALL_MERGE_SECONDS, StallRecorder

    recorder = StallRecorder(0.0)
    recorder.stalled(1.0, 1.2)
    recorder.stalled(1.2 + STALL_MERGE_SECONDS / 2, 1.6)  # ran a moment in between: one stall
    recorder.stalled(1.6 + STALL_MERGE_SECONDS * 2, 2.5)  # ran long enough: another
    assert recorder.stalls == [(1.0, 1.6), (1.6 + STALL_MERGE_SECONDS * 2, 2.5)]
