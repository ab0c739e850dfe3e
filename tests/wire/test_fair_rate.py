"""The fair rate's value, between its publishers and the lanes: what a publisher writes, a
lane reads back as the same rate (to the published thousandth), whatever the rate."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.fair_rate import (
    DRAINED_AFTER_SECONDS,
    DRAINED_FOR_SECONDS,
    MAX_FAIR_RATE,
    MIN_FAIR_RATE,
    LaneHeard,
    rate_of,
    sharing_lanes,
    value_of,
)


@given(st.floats(min_value=MIN_FAIR_RATE, max_value=MAX_FAIR_RATE))
def test_a_published_rate_reads_back_to_the_thousandth(rate: float) -> None:
    read = rate_of(value_of(rate))
    assert read is not None
    assert read == pytest.approx(rate, abs=MIN_FAIR_RATE / 2)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_rate_is_published_as_one_a_lane_accepts(rate: float) -> None:
    read = rate_of(value_of(rate))
    assert read is not None
    assert MIN_FAIR_RATE <= read <= MAX_FAIR_RATE


@pytest.mark.parametrize(("rate", "value"), [(0.5, "0.5"), (10.0, "10"), (1 / 3, "0.333")])
def test_values_are_plain_and_short(rate: float, value: str) -> None:
    assert value_of(rate) == value


@pytest.mark.parametrize("rate", [math.nan, math.inf])
def test_no_value_for_what_is_not_a_number(rate: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        value_of(rate)


# --- who shares the quota (`sharing_lanes`) ---------------------------------------------------

NOW = 1_800_000_000.0
DAY = 86_400.0


def heard(ago: float, behind: bool = False, caught_up: bool = False) -> LaneHeard:
    return LaneHeard(NOW - ago, behind, caught_up)


def test_a_quiet_lane_caught_up_counts_all_day_so_a_region_coming_back_is_counted() -> None:
    lanes = [heard(10), heard(600), heard(5 * 3600), heard(2 * DAY)]
    assert sharing_lanes(lanes, NOW, DAY) == 3  # two days ago: gone


def test_a_lane_that_drained_a_backlog_leaves_its_share_to_the_others() -> None:
    draining = heard(DRAINED_AFTER_SECONDS / 2, behind=True)
    drained = heard(DRAINED_AFTER_SECONDS * 2, behind=True)
    assert sharing_lanes([draining, drained], NOW, DAY) == 1


def test_a_lane_seen_to_catch_up_leaves_its_share_at_once_not_after_a_silence() -> None:
    # Its watermark reached the end of the latest checkpoint it sent from its backlog: it has
    # delivered all it told of, a second ago.
    caught_up = heard(1, behind=True, caught_up=True)
    assert sharing_lanes([caught_up, heard(1, behind=True)], NOW, DAY) == 1


def test_a_drained_lane_counts_again_later_it_may_be_cut_off_again() -> None:
    assert sharing_lanes([heard(DRAINED_FOR_SECONDS + 1, behind=True)], NOW, DAY) == 1
    later = heard(DRAINED_FOR_SECONDS + 1, behind=True, caught_up=True)
    assert sharing_lanes([later], NOW, DAY) == 1


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=3 * DAY), st.booleans(), st.booleans()),
        max_size=30,
    )
)
def test_never_more_than_heard_within_the_window_never_fewer_than_heard_lately(
    ages: list[tuple[float, bool, bool]],
) -> None:
    lanes = [heard(ago, behind, caught_up) for ago, behind, caught_up in ages]
    count = sharing_lanes(lanes, NOW, DAY)
    assert count <= sum(ago <= DAY for ago, _, _ in ages)
    lately = [ago <= DRAINED_AFTER_SECONDS and not (behind and up) for ago, behind, up in ages]
    assert count >= sum(lately)
    assert count >= sum(ago <= DAY and not behind for ago, behind, _ in ages)
