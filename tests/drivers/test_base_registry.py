"""Shared device pieces: the driver table, reconnect backoff, health; every driver's contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers import registry
from drivers.base import Backoff, HealthMonitor, Reconnector
from drivers.card.reader import CardReader
from drivers.card.results import CardRead
from drivers.card.serial_reader import SerialCardReader
from drivers.card.simulated_reader import SimulatedCardReader
from drivers.card.simulator import CardReaderSimulator
from drivers.errors import (
    DeviceDisconnected,
    DeviceInitError,
    DeviceTimeout,
    DriverUnavailable,
    FrameError,
    OptionError,
    ProtocolError,
    ReconnectInterrupted,
)
from drivers.palm.protocol import ChecksumError
from drivers.palm.scanner import PalmScanner
from drivers.palm.simulated import SimulatedPalmScanner
from drivers.registry import driver_class
from tests.drivers.card.conftest import FAST_TIMING, READER_OPTIONS


def test_table_lists_the_drivers_of_each_device_class() -> None:
    assert registry.available_drivers(CardReader) == [
        "hid-keyboard",
        "hid-msr",
        "secure-msr",
        "serial",
        "simulated",
        "simulated-hid-keyboard",
        "simulated-hid-msr",
        "simulated-secure-msr",
    ]
    assert registry.available_drivers(PalmScanner) == ["amazon-one", "simulated"]
    assert driver_class(CardReader, "serial") is SerialCardReader
    assert driver_class(CardReader, "simulated") is SimulatedCardReader
    assert driver_class(PalmScanner, "simulated") is SimulatedPalmScanner


def test_unknown_driver_names_the_known_ones() -> None:
    with pytest.raises(DriverUnavailable, match=r"no card-reader driver named 'usb'.*serial"):
        driver_class(CardReader, "usb")
    # A palm-scanner driver is not a card-reader driver, whatever its name.
    with pytest.raises(DriverUnavailable, match=r"no card-reader driver named 'amazon-one'"):
        driver_class(CardReader, "amazon-one")


@pytest.fixture
def scratch_rows() -> Iterator[None]:
    before = dict(registry._TABLE)
    yield
    registry._TABLE.clear()
    registry._TABLE.update(before)


@pytest.mark.usefixtures("scratch_rows")
def test_missing_optional_library_is_driver_unavailable() -> None:
    registry.register_driver(CardReader, "ghost", "posd_no_such_module.reader:Reader")
    with pytest.raises(DriverUnavailable, match="needs module 'posd_no_such_module'"):
        driver_class(CardReader, "ghost")


@pytest.mark.usefixtures("scratch_rows")
def test_target_of_the_wrong_class_is_refused() -> None:
    registry.register_driver(CardReader, "wrong", "drivers.base:Backoff")
    registry.register_driver(CardReader, "palm", "drivers.palm.simulated:SimulatedPalmScanner")
    with pytest.raises(DriverUnavailable, match="is not a card-reader driver"):
        driver_class(CardReader, "wrong")
    with pytest.raises(DriverUnavailable, match="is not a card-reader driver"):
        driver_class(CardReader, "palm")
    with pytest.raises(ValueError, match="module:Class"):
        registry.register_driver(CardReader, "bad", "no_colon")


# -- one contract, every driver (python-can style) ----------------------------------------


@pytest.fixture(params=["serial", "simulated"])
def any_reader(request: pytest.FixtureRequest) -> Iterator[CardReader]:
    if request.param == "serial":
        with (
            CardReaderSimulator(timing=FAST_TIMING) as sim,
            SerialCardReader(sim.port, **READER_OPTIONS) as reader,
        ):
            yield reader
    else:
        with SimulatedCardReader(device_timing=FAST_TIMING, **READER_OPTIONS) as simulated:
            yield simulated


def test_every_driver_honours_the_card_reader_contract(any_reader: CardReader) -> None:
    health = any_reader.health()
    assert health.connected and health.info is not None
    assert any_reader.identify().model == health.info.model
    result = any_reader.read_card(500, "EUR", timeout=3.0)
    assert isinstance(result, CardRead)
    card = result.card
    assert card.valid and card.pan.masked.count("*") >= card.pan.length - 10
    any_reader.cancel()
    any_reader.close()
    assert not any_reader.is_open and not any_reader.health().connected
    any_reader.close()  # idempotent


def test_simulated_driver_cleans_up_its_pty(tmp_path: Any) -> None:
    reader = SimulatedCardReader(device_timing=FAST_TIMING, **READER_OPTIONS)
    with reader:
        port = reader.port
        assert Path(port).exists()
    assert not Path(port).exists()
    with pytest.raises(DeviceInitError):
        SerialCardReader(port, **READER_OPTIONS).open()


# -- reconnect schedule (fake clock: the schedule, not the sleeping, is under test) -------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        return False


def test_backoff_delays_grow_and_cap() -> None:
    delays = Backoff(initial_s=0.1, max_s=0.5, multiplier=2).delays()
    assert [round(next(delays), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    # Far along the schedule the delay stays at the cap (no overflow, no growth).
    late = Backoff(initial_s=0.5, max_s=30.0).delays()
    assert [next(late) for _ in range(2000)][-1] == 30.0


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"initial_s": 0.0}, "backoff_initial_s"),
        ({"max_s": float("inf")}, "backoff_max_s"),
        ({"multiplier": 0.5}, "backoff_multiplier"),
    ],
)
def test_backoff_refuses_values_that_make_no_schedule(
    options: dict[str, float], option: str
) -> None:
    with pytest.raises(OptionError) as caught:
        Backoff(**options)
    assert caught.value.option == option


def test_one_error_hierarchy() -> None:
    # Timeouts are also the builtin TimeoutError (python-can's CanTimeoutError model).
    assert issubclass(DeviceTimeout, TimeoutError) and str(DeviceTimeout("slow")) == "slow"
    # One FrameError for both wire protocols: the palm's checksum error is one of them.
    assert issubclass(ChecksumError, FrameError) and issubclass(FrameError, ProtocolError)
    # A cancelled wait for an unplugged device is still, to anyone else, a disconnect.
    assert issubclass(ReconnectInterrupted, DeviceDisconnected)


def test_reconnector_backs_off_until_the_device_returns() -> None:
    clock = FakeClock()
    monitor = HealthMonitor(wall_clock=clock)
    reconnector = Reconnector(Backoff(0.1, 1.0, 2.0), monitor, clock, clock.wait)
    reconnector.lost(DeviceDisconnected("unplugged"))
    failures = iter([True, True, True, False])

    def attempt() -> str:
        if next(failures):
            raise DeviceInitError("port missing")
        monitor.connected()
        return "link"

    assert reconnector.connect(attempt, deadline=clock.now + 10) == "link"
    assert clock.sleeps == [0.1, 0.2, 0.4]  # first attempt immediate, then exponential
    assert reconnector.attempts == 4
    health = monitor.snapshot()
    assert health.connected and health.reconnects == 1 and health.disconnects == 1
    assert health.last_error == "device_init: port missing"


def test_reconnector_schedule_survives_across_calls_and_respects_deadlines() -> None:
    clock = FakeClock()
    monitor = HealthMonitor(wall_clock=clock)
    reconnector = Reconnector(Backoff(1.0, 8.0, 2.0), monitor, clock, clock.wait)
    reconnector.lost(DeviceDisconnected("unplugged"))

    def never() -> str:
        raise DeviceInitError("port missing")

    with pytest.raises(DeviceDisconnected, match="did not come back"):
        reconnector.connect(never, deadline=clock.now + 2.5)
    assert clock.sleeps == [1.0]  # tried at 0 and 1; the next try (at 3) is past the deadline
    # A later caller (a status poll) does not restart the schedule at the initial delay.
    with pytest.raises(DeviceDisconnected):
        reconnector.connect(never, deadline=clock.now + 0.5)
    assert clock.sleeps == [1.0]
    health = monitor.snapshot()
    assert not health.connected and health.next_retry_in_s == pytest.approx(2.0)
    assert health.disconnected_since == 100.0
