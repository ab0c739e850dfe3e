"""The rehearsal clock: simulated time from the real monotonic clock, one for every process."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.clock import MIN_REAL_WAIT_S, REHEARSAL_ENV, SYSTEM, RehearsalClock, from_environment
from sync.errors import ClockError

START = 1_800_000_000.0


def test_without_the_variable_the_system_clock() -> None:
    assert from_environment({}) is SYSTEM
    assert not SYSTEM.rehearsal
    assert SYSTEM.real_seconds(2.5) == 2.5
    assert abs(SYSTEM.time() - time.time()) < 1


def test_the_variable_names_a_rehearsal_clock_and_round_trips() -> None:
    clock = RehearsalClock(START, time.monotonic(), 1000.0, START + 3600)
    read = from_environment({REHEARSAL_ENV: clock.encode()})
    assert read == clock
    assert read.rehearsal
    assert read.describe() == "rehearsal x1000"


@pytest.mark.parametrize("value", ["1:2", "a:b:c", "1:2:0.5", "10:0:2:5", "1:2:3:4:5"])
def test_a_malformed_variable_is_refused(value: str) -> None:
    with pytest.raises(ClockError):
        from_environment({REHEARSAL_ENV: value})


def test_simulated_time_runs_speed_times_faster_then_at_the_real_pace() -> None:
    clock = RehearsalClock(START, 100.0, 1000.0, START + 10_000)
    assert clock.simulated(100.0) == START
    assert clock.simulated(101.0) == START + 1000
    assert clock.simulated(110.0) == START + 10_000  # the switch
    assert clock.simulated(112.5) == START + 10_002.5


@given(
    speed=st.floats(1, 10_000),
    span=st.floats(0, 1e6),
    a=st.floats(0, 1e4),
    b=st.floats(0, 1e4),
)
def test_simulated_time_never_goes_back(speed: float, span: float, a: float, b: float) -> None:
    clock = RehearsalClock(START, 0.0, speed, START + span)
    low, high = sorted((a, b))
    assert clock.simulated(low) <= clock.simulated(high)


def test_waits_are_divided_by_the_speed_with_a_floor() -> None:
    clock = RehearsalClock(START, time.monotonic(), 1000.0)
    assert clock.real_seconds(60.0) == pytest.approx(0.06)
    assert clock.real_seconds(1.0) == MIN_REAL_WAIT_S
    assert clock.real_seconds(0.0) == 0.0
    event = threading.Event()
    started = time.monotonic()
    assert not clock.wait(event, 100.0)
    assert time.monotonic() - started < 1.0


def test_after_the_switch_waits_are_real() -> None:
    clock = RehearsalClock(START, time.monotonic() - 10, 1000.0, START + 1000)
    assert not clock.fast()
    assert clock.real_seconds(2.0) == 2.0
