"""Capture priority across processes: delivery (`posd sync run`) waits while the capture
daemon holds priority for a payment, through the mapped flag file both open, and never longer
than the window."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posd.journal.files import FILE_MODE
from posd.journal.priority import NO_HOLD, CapturePriority, SharedHoldFlag

WINDOW_S = 0.25
HOLD_S = 0.1


def hold_for(path: str, seconds: float, started: multiprocessing.synchronize.Event) -> None:
    """The capture process: holds priority for `seconds`."""
    priority = CapturePriority(WINDOW_S, shared=SharedHoldFlag(Path(path), FILE_MODE))
    with priority.hold():
        started.set()
        time.sleep(seconds)
    priority.close()


def test_delivery_in_another_process_waits_for_a_capture_hold(tmp_path: Path) -> None:
    path = tmp_path / "capture.priority"
    delivery = CapturePriority(WINDOW_S, shared=SharedHoldFlag(path, FILE_MODE))
    assert delivery.yield_to_capture() < HOLD_S / 10  # nothing held: no wait
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    capture = context.Process(target=hold_for, args=(str(path), HOLD_S, started))
    capture.start()
    try:
        assert started.wait(30)
        waited = delivery.yield_to_capture()
    finally:
        capture.join(30)
    assert HOLD_S / 2 <= waited < WINDOW_S + 0.1, waited
    assert delivery.yield_to_capture() < HOLD_S / 10  # released: no wait
    delivery.close()


def test_a_hold_older_than_the_window_no_longer_holds_delivery(tmp_path: Path) -> None:
    path = tmp_path / "capture.priority"
    capture = SharedHoldFlag(path, FILE_MODE)
    capture.publish(time.monotonic_ns() - int(2 * WINDOW_S * 1e9))  # a shopper's long search
    delivery = CapturePriority(WINDOW_S, shared=SharedHoldFlag(path, FILE_MODE))
    assert delivery.yield_to_capture() < 0.05
    capture.publish(time.monotonic_ns())
    started = time.monotonic()
    delivery.yield_to_capture()
    assert time.monotonic() - started >= WINDOW_S * 0.9  # a fresh one holds, up to the window


def test_a_hold_from_the_future_never_stalls_delivery(tmp_path: Path) -> None:
    """The flag outlives a reboot (CLOCK_MONOTONIC restarts) and anyone in the group may write
    it: a start later than now is no hold at all."""
    path = tmp_path / "capture.priority"
    writer = SharedHoldFlag(path, FILE_MODE)
    delivery = CapturePriority(WINDOW_S, shared=SharedHoldFlag(path, FILE_MODE))
    for since in (time.monotonic_ns() + 10**12, 2**64 - 1):
        writer.publish(since)
        started = time.monotonic()
        delivery.yield_to_capture()
        assert not delivery.held_elsewhere()
        assert time.monotonic() - started < WINDOW_S / 2
    delivery.close()
    writer.close()


@given(st.lists(st.booleans(), max_size=40))
def test_the_flag_shows_the_newest_hold_on_and_none_once_all_ended(
    tmp_path_factory: pytest.TempPathFactory, steps: list[bool]
) -> None:
    """Holds begun and ended in any order (`begin`/`end`, what a payment's append takes):
    the flag holds the newest start of the holds still on, `NO_HOLD` once none is."""
    path = tmp_path_factory.mktemp("flag") / "capture.priority"
    capture = CapturePriority(WINDOW_S, shared=SharedHoldFlag(path, FILE_MODE))
    seen = SharedHoldFlag(path, FILE_MODE)
    on: list[int] = []
    for begin in steps:
        if begin or not on:
            on.append(capture.begin())
        else:
            capture.end(on.pop(len(on) // 2))
        assert seen.held_since() == max(on, default=NO_HOLD)
        assert capture.held_elsewhere() is False
    for started in on:
        capture.end(started)
    assert seen.held_since() == NO_HOLD
    capture.close()
    seen.close()
