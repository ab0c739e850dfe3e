"""`rfc3339` formats the seconds once per second: the text stays `datetime`'s, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sync.timestamps import rfc3339

LATEST = 253_402_300_799.0  # 9999-12-31T23:59:59Z: the last second datetime can format


def by_datetime(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(st.floats(min_value=0, max_value=LATEST - 1, allow_nan=False))
def test_the_text_is_datetimes(ts: float) -> None:
    assert rfc3339(ts) == by_datetime(ts)


@given(
    st.integers(min_value=0, max_value=2**34),
    st.sampled_from([0.4999995, 0.5000005, 0.9999996, 0.0000005, 0.0000015, 0.0000025]),
)
def test_microseconds_round_half_to_even_across_the_second(second: int, fraction: float) -> None:
    """Near a whole microsecond and near the next second, where rounding carries."""
    for ts in (second + fraction, float(second), second - 1e-7):
        if ts >= 0:
            assert rfc3339(ts) == by_datetime(ts)
            assert rfc3339(ts) == by_datetime(ts)  # again, from the formatted second
