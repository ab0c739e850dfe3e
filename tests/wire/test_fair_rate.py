"""The fair rate's value, between its publishers and the lanes: what a publisher writes, a
lane reads back as the same rate (to the published thousandth), whatever the rate."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.fair_rate import MAX_FAIR_RATE, MIN_FAIR_RATE, rate_of, value_of


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
