"""The lane's day: closed at night, busiest at lunch and in the evening, about as many
payments as asked."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rehearsal.lane_day import (
    CLOSE_HOUR,
    DAY_S,
    HOUR_S,
    MAX_AMOUNT_MINOR,
    MEAN_AMOUNT_MINOR,
    MIN_AMOUNT_MINOR,
    OPEN_HOUR,
    schedule,
)

MIDNIGHT = 1_800_000_000 - 1_800_000_000 % DAY_S


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), offset=st.floats(0, DAY_S), hours=st.floats(1, 96))
def test_payments_only_while_open_in_order_and_in_range(
    seed: int, offset: float, hours: float
) -> None:
    start = MIDNIGHT + offset
    end = start + hours * HOUR_S
    payments = schedule(start, end, seed)
    assert [p.at for p in payments] == sorted(p.at for p in payments)
    for payment in payments:
        assert start <= payment.at < end
        assert OPEN_HOUR <= int(payment.at % DAY_S // HOUR_S) < CLOSE_HOUR
        assert MIN_AMOUNT_MINOR <= payment.amount_minor <= MAX_AMOUNT_MINOR


def test_three_days_look_like_a_lane() -> None:
    payments = schedule(MIDNIGHT, MIDNIGHT + 3 * DAY_S, seed=7, per_day=400)
    assert 1100 < len(payments) < 1300
    mean = sum(p.amount_minor for p in payments) / len(payments)
    assert 0.85 * MEAN_AMOUNT_MINOR < mean < 1.15 * MEAN_AMOUNT_MINOR
    by_hour = [0] * 24
    for payment in payments:
        by_hour[int(payment.at % DAY_S // HOUR_S)] += 1
    assert by_hour[12] > 2 * by_hour[8] and by_hour[18] > 2 * by_hour[21]
