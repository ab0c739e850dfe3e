"""The `hid-keyboard` driver end to end through pyusb, on the simulated keyboard-mode reader."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.card.hid_keyboard import HidKeyboardReader
from drivers.card.hid_keyboard_sim import SimulatedHidKeyboardReader
from drivers.card.keyboard_layouts import LayoutName
from drivers.card.keyboard_reports import type_swipe
from drivers.card.reader import CardReader
from drivers.card.results import CardRead, CardUnreadable
from drivers.card.sim_cashier import magstripe_deck
from drivers.errors import DeviceInitError, DriverUnavailable, OptionError
from drivers.registry import driver_class
from tests.drivers.card.conftest import wait_until
from tests.drivers.card.hid_rig import (
    AMOUNT,
    CURRENCY,
    FAST,
    Background,
    HidReaderSuite,
    HidRig,
    armed,
)

ROLL_OVER = bytes([0, 0, 1, 1, 1, 1, 1, 1])


@pytest.fixture(params=list(LayoutName))
def rig(request: pytest.FixtureRequest) -> Iterator[HidRig]:
    with SimulatedHidKeyboardReader(deck=(), layout=request.param, **FAST) as reader:
        sim = reader.simulator
        yield HidRig(
            reader=reader,
            simulator=sim,
            swipe=sim.swipe,
            malformed_report=ROLL_OVER,
            bad_swipe=lambda: sim.send(type_swipe("%E?;E?", sim.keyboard)),
        )


class TestKeyboardReader(HidReaderSuite):
    """The foundation's suite, in every layout."""


def test_unattended_reads_swipe_the_deck_in_order() -> None:
    deck = magstripe_deck()
    with SimulatedHidKeyboardReader(swipe_delay_s=0.05, **FAST) as reader:
        for card in deck[:3]:
            result = reader.read_card(AMOUNT, CURRENCY, 5.0)
            assert isinstance(result, CardRead) and result.card.track2 == card.track2
        assert reader.simulator.typed_into_desktop == []


def test_the_driver_table_names_both_drivers() -> None:
    assert driver_class(CardReader, "hid-keyboard") is HidKeyboardReader
    assert driver_class(CardReader, "simulated-hid-keyboard") is SimulatedHidKeyboardReader


def test_the_real_driver_on_pyusbs_default_backend_finds_no_such_reader() -> None:
    reader = HidKeyboardReader(vendor_id=0xFFFF, product_id=0xFFFE, **FAST)
    with pytest.raises((DeviceInitError, DriverUnavailable)):  # no reader, or no libusb here
        reader.open()
    assert not reader.is_open and reader.health().last_error is not None


def test_swipe_ended_by_silence_instead_of_enter() -> None:
    card = magstripe_deck()[0]
    with SimulatedHidKeyboardReader(deck=(), inter_key_timeout_s=0.1, **FAST) as reader:
        reports = type_swipe(card.track1.reveal() + card.track2.reveal(), reader.simulator.keyboard)
        started = time.monotonic()
        pending = Background(reader)
        wait_until(lambda: armed(reader))
        reader.simulator.send(reports[:-2])  # no Enter
        result = pending.join()
        assert isinstance(result, CardRead) and result.card.track2 == card.track2
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("cut", [1, 7])
def test_a_swipe_without_a_start_sentinel_is_unreadable_never_parsed(cut: int) -> None:
    """The tail of a swipe (`PAN=...?` after its `;` went to the drain) is never charged."""
    card = magstripe_deck()[0]
    with SimulatedHidKeyboardReader(deck=(), **FAST) as reader:
        pending = Background(reader)
        wait_until(lambda: armed(reader))
        reader.simulator.send(type_swipe(card.track2.reveal()[cut:], reader.simulator.keyboard))
        assert isinstance(pending.join(), CardUnreadable)


def test_the_keyboard_assembler_waits_its_inter_key_timeout_for_quiet() -> None:
    with SimulatedHidKeyboardReader(deck=(), inter_key_timeout_s=0.3, **FAST) as reader:
        assert reader._assembler().quiet_s == 0.3


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"layout": "dvorak"}, "layout"),
        ({"inter_key_timeout_s": 0}, "inter_key_timeout_s"),
        ({"swipe_delay_s": -1}, "swipe_delay_s"),
        ({"report_poll_s": 0}, "report_poll_s"),
    ],
)
def test_options_are_checked(options: dict[str, object], name: str) -> None:
    with pytest.raises(OptionError) as caught:
        SimulatedHidKeyboardReader(**options)  # type: ignore[arg-type]
    assert caught.value.option == name


def test_cable_flag_file_unplugs_the_simulated_reader(tmp_path: Path) -> None:
    flag = tmp_path / "unplugged"
    with SimulatedHidKeyboardReader(deck=(), unplugged_while=str(flag), **FAST) as reader:
        flag.touch()
        wait_until(lambda: not reader.simulator.plugged)
        flag.unlink()
        wait_until(lambda: reader.simulator.plugged)


LEFTOVER_KEY_UP = bytes(8)  # the all-keys-up report after a swipe's Enter
SWIPE_AFTER_READ_STARTS_S = 0.2  # well inside the reader's quiet time (0.5 s)


def test_a_leftover_key_up_does_not_make_the_next_read_drop_an_early_swipe() -> None:
    """The last swipe's key-up report is still queued when the next payment's read starts:
    it begins no swipe, so the drain does not wait out the quiet time, and a customer who
    swipes 0.2 s into the read is read (waiting, the drain dropped that swipe as stale)."""
    card = magstripe_deck()[0]
    with SimulatedHidKeyboardReader(deck=(), inter_key_timeout_s=0.5, **FAST) as reader:
        reader.simulator.send([LEFTOVER_KEY_UP])
        pending = Background(reader)
        time.sleep(SWIPE_AFTER_READ_STARTS_S)
        reader.simulator.send(
            type_swipe(card.track1.reveal() + card.track2.reveal(), reader.simulator.keyboard)
        )
        result = pending.join()
        assert isinstance(result, CardRead) and result.card.track2 == card.track2
        assert reader.stale_reports_dropped == 1
