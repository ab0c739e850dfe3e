"""Shared device pieces: the driver table, reconnect backoff, health; every driver's contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers import registry
from drivers.base import Backoff, HealthMonitor, Reconnector
from drivers.card.reader import CardReader, card_reader_driver, create_card_reader
from drivers.card.serial_reader import SerialCardReader
from drivers.card.simulated_reader import SimulatedCardReader
from drivers.card.simulator import CardReaderSimulator
from drivers.errors import DeviceDisconnected, DeviceInitError, DriverUnavailable
from tests.drivers.conftest import FAST_TIMING, READER_OPTIONS


def test_table_lists_the_card_reader_drivers() -> None:
    assert {"serial", "simulated"} <= set(registry.available_drivers(registry.CARD_READER))
    assert card_reader_driver("serial") is SerialCardReader
    assert card_reader_driver("simulated") is SimulatedCardReader
    assert registry.load_driver(registry.CARD_READER, "serial") is SerialCardReader


def test_unknown_driver_names_the_known_ones() -> None:
    with pytest.raises(DriverUnavailable, match=r"no card-reader driver named 'usb'.*serial"):
        card_reader_driver("usb")


@pytest.fixture
def scratch_rows() -> Iterator[None]:
    before = dict(registry._TABLE)
    yield
    registry._TABLE.clear()
    registry._TABLE.update(before)


@pytest.mark.usefixtures("scratch_rows")
def test_missing_optional_library_is_driver_unavailable() -> None:
    registry.register_driver(registry.CARD_READER, "ghost", "posd_no_such_module.reader:Reader")
    with pytest.raises(DriverUnavailable, match="needs module 'posd_no_such_module'"):
        card_reader_driver("ghost")


@pytest.mark.usefixtures("scratch_rows")
def test_target_of_the_wrong_class_is_refused() -> None:
    registry.register_driver(registry.CARD_READER, "wrong", "drivers.base:Backoff")
    with pytest.raises(DriverUnavailable, match="is not a card-reader driver"):
        card_reader_driver("wrong")
    with pytest.raises(ValueError, match="module:Class"):
        registry.register_driver(registry.CARD_READER, "bad", "no_colon")


# -- one contract, every driver (python-can style) ----------------------------------------


@pytest.fixture(params=["serial", "simulated"])
def any_reader(request: pytest.FixtureRequest) -> Iterator[CardReader]:
    name: str = request.param
    if name == "serial":
        with CardReaderSimulator(timing=FAST_TIMING) as sim:
            reader = create_card_reader(name, port=sim.port, **READER_OPTIONS)
            with reader:
                yield reader
    else:
        device = registry.create_device(
            registry.CARD_READER, name, device_timing=FAST_TIMING, **READER_OPTIONS
        )
        assert isinstance(device, CardReader)
        with device:
            yield device


def test_every_driver_honours_the_card_reader_contract(any_reader: CardReader) -> None:
    health = any_reader.health()
    assert health.connected and health.info is not None
    assert any_reader.identify().model == health.info.model
    card = any_reader.read_card(500, "EUR", timeout=3.0)
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
    delays = Backoff(initial=0.1, maximum=0.5, multiplier=2).delays()
    assert [round(next(delays), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]


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
