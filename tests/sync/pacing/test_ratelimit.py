"""The adaptive rate limiter: dormant until throttled, cuts on throttling, grows back along
CUBIC, never hands out tokens it does not have. Time is passed in (no sleeping, no timing)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.pacing.ratelimit import (
    DEFAULT_DECREASE_FACTOR,
    MAX_RATE_ADJUST_SCALE,
    RATE_BUCKET_SECONDS,
    AdaptiveRateLimiter,
    CubicRate,
    RateMeter,
)

T0 = 1_000.0
BATCH = 10


def limiter_sending_at(
    rate: float, seconds: float, accepted_share: float = 1.0, jitter: float = 0.0
) -> AdaptiveRateLimiter:
    """A limiter that saw `rate` entries/s sent (one entry a request) for `seconds`, the
    service taking `accepted_share` of them (the rest throttled); `jitter` stands in for the
    random draw of the bucket's starting tokens."""
    limiter = AdaptiveRateLimiter(T0, min_capacity=BATCH, uniform=lambda: jitter)
    taken = 0.0
    for step in range(int(rate * seconds)):
        now = T0 + step / rate
        limiter.on_send(1, now)
        taken += accepted_share
        accepted = int(taken >= 1)
        taken -= accepted
        limiter.on_answer(BATCH, accepted, throttled=not accepted, now=now)
    return limiter


def throttled_at(rate: float, jitter: float = 0.0) -> tuple[AdaptiveRateLimiter, float]:
    """A limiter throttled once after sending at `rate` for 5 s; and the time of the throttle."""
    limiter = limiter_sending_at(rate, 5.0, jitter=jitter)
    now = T0 + 5.0
    limiter.on_answer(BATCH, 0, throttled=True, now=now)
    return limiter, now


def fill_rate(limiter: AdaptiveRateLimiter) -> float:
    rate = limiter.snapshot().fill_rate
    assert rate is not None
    return rate


def test_dormant_until_the_first_throttle_so_a_lone_terminal_is_never_slowed() -> None:
    limiter = limiter_sending_at(5_000.0, 2.0)
    for step in range(100):
        limiter.on_answer(BATCH, BATCH, throttled=False, now=T0 + 2.0 + step * 0.01)
    assert not limiter.enabled
    assert limiter.delay(BATCH, T0 + 3.0) == 0.0
    assert limiter.lease_limit(80, 30.0, T0 + 3.0) == 80


def test_switched_off_it_never_engages_even_when_throttled() -> None:
    limiter = AdaptiveRateLimiter(T0, active=False)
    limiter.on_send(BATCH, T0)
    limiter.on_answer(BATCH, 0, throttled=True, now=T0 + 1.0)
    assert not limiter.enabled
    assert limiter.delay(BATCH, T0 + 1.0) == 0.0


def test_a_throttle_cuts_the_rate_to_the_measured_rate_times_the_decrease_factor() -> None:
    limiter, _ = throttled_at(100.0)
    measured = limiter.snapshot().measured_rate
    assert measured == pytest.approx(100.0, rel=0.05)
    assert limiter.enabled
    assert fill_rate(limiter) == pytest.approx(measured * DEFAULT_DECREASE_FACTOR)


def test_the_cut_starts_from_the_rate_the_service_accepted_not_the_rate_offered() -> None:
    limiter = limiter_sending_at(100.0, 5.0, accepted_share=0.2)  # 100/s offered, 20/s taken
    assert limiter.enabled
    assert limiter.snapshot().measured_rate == pytest.approx(100.0, rel=0.05)
    assert fill_rate(limiter) < 20.0 * DEFAULT_DECREASE_FACTOR * 1.1


def test_after_a_throttle_sending_waits_for_tokens_at_the_new_rate() -> None:
    limiter, now = throttled_at(100.0)
    rate = fill_rate(limiter)
    assert limiter.delay(BATCH, now) == pytest.approx(BATCH / rate)  # the bucket starts empty
    later = now + BATCH / rate
    assert limiter.delay(BATCH, later) == 0.0
    limiter.on_send(BATCH, later)
    # the rate climbs the curve meanwhile, so the next entry comes a little sooner
    assert 0.9 / rate < limiter.delay(1, later) <= 1 / rate


def test_with_a_batch_waiting_the_rate_follows_the_curve_between_answers() -> None:
    limiter, now = throttled_at(100.0)
    cut, w_max = fill_rate(limiter), limiter.snapshot().measured_rate
    limiter.delay(BATCH, now + 5.0)  # no answer since the throttle: the curve still moves
    assert cut < fill_rate(limiter) < w_max  # concave: back at the old rate at 10 s
    limiter.delay(BATCH, now + 10.0)
    assert fill_rate(limiter) == pytest.approx(w_max)
    limiter.delay(BATCH, now + 13.0)  # past the plateau: at least botocore's growth
    assert fill_rate(limiter) >= w_max + 0.4 * 3.0**3 - 1e-9


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_a_fleet_throttled_at_once_does_not_refill_in_step(jitter: float) -> None:
    limiter, now = throttled_at(100.0, jitter=jitter)
    rate = fill_rate(limiter)
    assert limiter.delay(BATCH, now) == pytest.approx((1 - jitter) * BATCH / rate)


def test_repeated_throttles_keep_cutting_down_to_the_floor_never_below() -> None:
    limiter, now = throttled_at(100.0)
    rates = [fill_rate(limiter)]
    for _ in range(40):
        now += RATE_BUCKET_SECONDS
        limiter.on_send(1, now)
        limiter.on_answer(BATCH, 0, throttled=True, now=now)
        rates.append(fill_rate(limiter))
    assert rates[-1] < rates[0] / 10
    assert all(later <= earlier for earlier, later in itertools.pairwise(rates))
    assert min(rates) >= 0.5  # the default floor
    assert limiter.delay(BATCH, now) > 0


def test_clean_answers_grow_the_rate_back_past_the_throttled_rate() -> None:
    limiter, now = throttled_at(100.0)
    cut = fill_rate(limiter)
    rates = []
    for second in range(1, 40):
        # keep sending at the allowed rate, so the measured rate follows the limit
        t = now + second
        sent = math.ceil(fill_rate(limiter))
        limiter.on_send(sent, t)
        limiter.on_answer(BATCH, sent, throttled=False, now=t)
        rates.append(fill_rate(limiter))
    assert rates[-1] > 100.0 > cut
    # the plateau: around the recovery time the rate stays near the throttled one
    assert rates[9] == pytest.approx(100.0, rel=0.15)
    assert all(later >= earlier for earlier, later in itertools.pairwise(rates))


def test_growth_is_capped_by_twice_the_rate_actually_sent() -> None:
    limiter, now = throttled_at(100.0)
    # Nothing more is sent for a minute: CUBIC alone would allow thousands per second.
    for second in range(1, 60):
        limiter.on_answer(BATCH, 0, throttled=False, now=now + second)
    assert fill_rate(limiter) <= MAX_RATE_ADJUST_SCALE * limiter.snapshot().measured_rate + 0.5
    assert fill_rate(limiter) < 100.0


def test_the_bucket_always_holds_one_full_request_so_a_batch_is_never_starved() -> None:
    limiter, now = throttled_at(0.2)  # cut to the 0.5/s floor: capacity would be 1 entry
    wait = limiter.delay(BATCH, now)
    assert math.isfinite(wait) and wait > 0
    assert limiter.delay(BATCH, now + wait) == 0.0


def test_the_lease_is_bounded_by_what_may_be_sent_meanwhile() -> None:
    limiter, now = throttled_at(2.0)
    rate = fill_rate(limiter)
    assert limiter.lease_limit(80, 10.0, now) == max(BATCH, math.floor(rate * 10.0))
    assert limiter.lease_limit(5, 10.0, now) == 5


def test_a_clock_stepping_back_adds_no_tokens() -> None:
    limiter, now = throttled_at(100.0)
    before = limiter.delay(BATCH, now)
    assert limiter.delay(BATCH, now - 3_600.0) == pytest.approx(before)


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=5.0),  # time step
            st.integers(min_value=1, max_value=BATCH),  # entries sent
            st.booleans(),  # throttled
        ),
        max_size=60,
    )
)
def test_tokens_never_negative_and_rate_never_below_the_floor(
    steps: list[tuple[float, int, bool]],
) -> None:
    limiter = AdaptiveRateLimiter(T0, min_capacity=BATCH)
    now = T0
    for step, amount, throttled in steps:
        now += step
        if limiter.delay(amount, now) == 0.0:
            limiter.on_send(amount, now)
        limiter.on_answer(BATCH, 0 if throttled else amount, throttled=throttled, now=now)
        snapshot = limiter.snapshot()
        assert snapshot.tokens >= 0.0
        assert snapshot.fill_rate is None or snapshot.fill_rate >= 0.5
        assert limiter.delay(amount, now) >= 0.0


@pytest.mark.parametrize("throttled_rate", [0.5, 100.0, 5_000.0])
def test_cubic_restarts_at_beta_and_is_back_at_the_throttled_rate_after_recovery(
    throttled_rate: float,
) -> None:
    cubic = CubicRate(T0, recovery_seconds=10.0, beta=0.7)
    assert cubic.on_throttle(throttled_rate, T0) == pytest.approx(0.7 * throttled_rate)
    assert cubic.on_success(T0) == pytest.approx(0.7 * throttled_rate)
    assert cubic.on_success(T0 + 5) < throttled_rate
    assert cubic.on_success(T0 + 10) == pytest.approx(throttled_rate)
    assert cubic.on_success(T0 + 12) > cubic.on_success(T0 + 11) > throttled_rate


def test_the_meter_measures_entries_per_second() -> None:
    meter = RateMeter(T0)
    for step in range(200):
        meter.record(5, T0 + step * 0.05)  # 100 entries/s
    assert meter.rate == pytest.approx(100.0, rel=0.05)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="decrease_factor"):
        AdaptiveRateLimiter(T0, decrease_factor=1.0)


def test_a_throttle_in_the_first_half_second_cuts_from_the_rate_so_far_not_to_the_floor() -> None:
    limiter = AdaptiveRateLimiter(T0, min_capacity=BATCH, uniform=lambda: 0.0)
    for step in range(40):  # 400 entries/s for 0.1 s, all accepted
        now = T0 + step * 0.0025
        limiter.on_send(1, now)
        limiter.on_answer(BATCH, 1, throttled=False, now=now)
    limiter.on_answer(BATCH, 0, throttled=True, now=T0 + 0.1)
    # 40 entries over the meter's shortest window (0.5 s): 80/s, cut by the decrease factor
    assert fill_rate(limiter) == pytest.approx(80.0 * DEFAULT_DECREASE_FACTOR)


def starting_limiter(full_window: int = 80) -> AdaptiveRateLimiter:
    return AdaptiveRateLimiter(T0, min_capacity=BATCH, full_window=full_window)


def test_slow_start_doubles_the_entries_in_flight_with_every_round_trip() -> None:
    limiter = starting_limiter()
    allowed = []
    backlog = 1_000
    for trip in range(3):
        sent = limiter.grant(backlog, T0 + trip).entries
        allowed.append(sent)
        limiter.on_send(sent, T0 + trip)
        assert limiter.grant(backlog, T0 + trip).entries == 0  # wait for the answer ...
        assert limiter.grant(backlog, T0 + trip).wait_seconds == math.inf
        limiter.on_answer(sent, sent, throttled=False, now=T0 + trip + 0.5)
    assert allowed == [BATCH, 2 * BATCH, 4 * BATCH]  # one request, then doubling
    assert not limiter.starting and not limiter.enabled  # full window reached: out of the way
    assert limiter.grant(BATCH, T0 + 8).entries == BATCH


def test_a_throttle_during_slow_start_engages_the_limiter() -> None:
    limiter = starting_limiter()
    limiter.on_send(1, T0)
    limiter.on_answer(1, 0, throttled=True, now=T0 + 0.1)
    assert not limiter.starting and limiter.enabled
    assert fill_rate(limiter) == 0.5  # nothing accepted yet: the floor


def test_a_request_without_answer_ends_the_slow_start() -> None:
    limiter = starting_limiter()
    limiter.on_send(limiter.grant(BATCH, T0).entries, T0)
    assert limiter.grant(BATCH, T0).entries == 0
    limiter.on_unanswered()
    assert not limiter.starting and not limiter.enabled
    assert limiter.grant(BATCH, T0).entries == BATCH  # no deadlock; the link monitor paces


def test_restart_after_an_outage_slow_starts_again() -> None:
    limiter, now = throttled_at(100.0)
    limiter.restart(now)
    assert not limiter.enabled
    assert limiter.grant(BATCH, now).entries == BATCH  # full_window 0: no slow start here
    fresh = starting_limiter()
    fresh.on_send(1, T0)
    fresh.on_answer(1, 1, throttled=False, now=T0)
    fresh.restart(T0 + 1)
    assert fresh.starting and fresh.grant(1_000, T0 + 1).entries == BATCH


def test_switched_off_there_is_no_slow_start_either() -> None:
    limiter = AdaptiveRateLimiter(T0, full_window=80, active=False)
    assert not limiter.starting
    assert limiter.grant(BATCH, T0).entries == BATCH


def test_every_throttle_restarts_the_bucket_at_a_random_phase_never_fuller() -> None:
    """A random part of one request, but never more tokens than the bucket had: handing out
    fresh tokens on each throttle let a lane answered quickly send again at once, throttled
    again, in a loop the bucket never stopped (bench/fleet_sim.py)."""
    draws = iter([0.5, 0.9, 0.001])  # first engagement, then two more throttles
    limiter = AdaptiveRateLimiter(T0, min_capacity=BATCH, uniform=lambda: next(draws))
    limiter.on_send(BATCH, T0)
    limiter.on_answer(BATCH, 0, throttled=True, now=T0 + 0.1)
    assert limiter.snapshot().tokens == pytest.approx(0.5 * BATCH)
    limiter.on_send(4, T0 + 0.2)  # 1 token left, and a little refill
    had = limiter.snapshot().tokens
    limiter.on_answer(4, 0, throttled=True, now=T0 + 0.3)
    assert limiter.snapshot().tokens <= had + limiter.snapshot().measured_rate
    assert limiter.snapshot().tokens < 0.9 * BATCH
    limiter.on_answer(1, 0, throttled=True, now=T0 + 0.4)
    assert limiter.snapshot().tokens == pytest.approx(0.001 * BATCH)
