"""The `hid-msr` driver end to end through pyusb, on its simulated reader, in both layouts.

The HID foundation's suite (every deck magstripe card, stale swipes dropped, unplug and
replug mid-wait, a malformed report then a good swipe, cancel, timeout, no card number in
any output) runs on each layout; then what is this driver's own: the report descriptor
checked at open, the layout picked by vendor/product id, bad tracks left out, the simulated
cashier swiping the deck.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.card.hid_msr import HidMsrReader
from drivers.card.hid_msr_formats import (
    DECODE_ERROR,
    HID_POS,
    MAGTEK,
    NOT_PRESENT,
    MsrSwipe,
    ReportFormat,
    TrackRead,
)
from drivers.card.hid_msr_sim import SIM_IDENTITIES, SimulatedHidMsrReader, SimulatedMsrDevice
from drivers.card.protocol import ReaderState
from drivers.card.reader import CardReader
from drivers.card.results import CardRead, CardUnreadable
from drivers.errors import DeviceInitError, OptionError, TrackLrcError
from drivers.outcomes import TimedOut
from drivers.registry import driver_class
from drivers.sensitive import SecretStr
from tests.drivers.card import hid_rig
from tests.drivers.card.conftest import WAIT_LIMIT_S, assert_no_secret, wait_until
from tests.drivers.card.hid_rig import (
    AMOUNT,
    CURRENCY,
    MAGSTRIPE_DECK,
    Background,
    HidReaderSuite,
    HidRig,
    armed,
    read_swiped,
)

FAST: dict[str, Any] = dict(hid_rig.FAST)
FORMATS = tuple(ReportFormat)
# One report each layout refuses: a data report before the lengths report (page 0x8E), a
# track length beyond its 110-byte field (MagTek).
MALFORMED = {
    HID_POS.name: bytes([2]) + bytes(79),
    MAGTEK.name: bytes([0, 0, 0, 200, 0, 0, 0]) + bytes(330),
}


def msr_rig(report_format: ReportFormat) -> Iterator[HidRig]:
    with SimulatedHidMsrReader(deck=(), report_format=report_format, **FAST) as reader:
        sim = reader.simulator
        yield HidRig(
            reader=reader,
            simulator=sim,
            swipe=sim.swipe,
            malformed_report=MALFORMED[report_format],
            bad_swipe=lambda: sim.swipe(MsrSwipe(DECODE_ERROR, DECODE_ERROR)),
        )


@pytest.fixture(params=FORMATS)
def rig(request: pytest.FixtureRequest) -> Iterator[HidRig]:
    yield from msr_rig(request.param)


class TestHidMsr(HidReaderSuite):
    """The foundation's suite, page 0x8E and MagTek."""


def test_a_bad_track_1_with_a_good_track_2_reads(rig: HidRig) -> None:
    card = MAGSTRIPE_DECK[0]
    pending = Background(rig.reader)
    wait_until(lambda: armed(rig.reader))
    assert isinstance(rig.simulator, SimulatedMsrDevice)
    rig.simulator.swipe(MsrSwipe(DECODE_ERROR, TrackRead(text=card.track2)))
    result = pending.join()
    assert isinstance(result, CardRead)
    assert result.card.track2 == card.track2 and result.card.track1 is None


def test_track_2_alone_bad_is_unreadable_and_the_next_swipe_reads(rig: HidRig) -> None:
    pending = Background(rig.reader)
    wait_until(lambda: armed(rig.reader))
    assert isinstance(rig.simulator, SimulatedMsrDevice)
    rig.simulator.swipe(MsrSwipe(NOT_PRESENT, DECODE_ERROR))
    assert isinstance(pending.join(), CardUnreadable)
    assert isinstance(read_swiped(rig, MAGSTRIPE_DECK[1]), CardRead)


def test_a_track_that_reads_but_fails_its_lrc_raises_without_the_data(rig: HidRig) -> None:
    track2 = MAGSTRIPE_DECK[0].track2.reveal()
    broken = track2[:-1] + chr(ord(track2[-1]) ^ 1)
    pending = Background(rig.reader)
    wait_until(lambda: armed(rig.reader))
    assert isinstance(rig.simulator, SimulatedMsrDevice)
    rig.simulator.swipe(MsrSwipe(track2=TrackRead(text=SecretStr(broken))))
    with pytest.raises(TrackLrcError) as raised:
        pending.join()
    assert_no_secret(str(raised.value), track2[1:17])


@pytest.mark.parametrize("report_format", FORMATS)
def test_the_layout_is_picked_by_vendor_and_product_id(report_format: ReportFormat) -> None:
    with SimulatedHidMsrReader(deck=(), report_format=report_format, **FAST) as reader:
        assert reader.layout.name == report_format
        identity = SIM_IDENTITIES[report_format]
        info = reader.identify()
        assert info.model == identity.product and info.driver == "simulated-hid-msr"


class ForcedReader(HidMsrReader):
    """The real driver with `report_format` forced, on a given simulated device."""

    def __init__(self, device: SimulatedMsrDevice, report_format: ReportFormat) -> None:
        self.device = device
        identity = device.function.identity
        super().__init__(
            identity.vendor_id, identity.product_id, report_format=report_format, **FAST
        )

    def _usb_backend(self) -> SimulatedMsrDevice:
        return self.device


@pytest.mark.parametrize(
    ("device_format", "forced"),
    [(ReportFormat.MAGTEK, ReportFormat.HID_POS), (ReportFormat.HID_POS, ReportFormat.MAGTEK)],
)
def test_a_reader_whose_descriptor_is_not_the_forced_layout_does_not_open(
    device_format: ReportFormat, forced: ReportFormat
) -> None:
    layout = MAGTEK if device_format is ReportFormat.MAGTEK else HID_POS
    device = SimulatedMsrDevice(layout, SIM_IDENTITIES[device_format])
    reader = ForcedReader(device, forced)
    with pytest.raises(DeviceInitError, match="report_format"):
        reader.open()
    assert not reader.is_open
    assert device.typed_into_desktop == []


# Usage Minimum 0, Usage Maximum 0x3FF, again and again: what a hostile device appends.
HOSTILE_DESCRIPTOR_TAIL = bytes.fromhex("19002aff03") * 8192


def test_only_the_declared_length_of_the_report_descriptor_is_read() -> None:
    device = SimulatedMsrDevice(
        HID_POS, SIM_IDENTITIES[ReportFormat.HID_POS], descriptor_tail=HOSTILE_DESCRIPTOR_TAIL
    )
    with ForcedReader(device, ReportFormat.HID_POS) as reader:
        assert reader.is_open


def test_forcing_the_reader_s_own_layout_opens_and_reads() -> None:
    device = SimulatedMsrDevice(
        HID_POS, SIM_IDENTITIES[ReportFormat.MAGTEK]
    )  # MagTek ids, page 0x8E
    with ForcedReader(device, ReportFormat.HID_POS) as reader:
        pending = Background(reader)
        wait_until(lambda: armed(reader))
        device.swipe(MAGSTRIPE_DECK[2])
        result = pending.join()
        assert isinstance(result, CardRead) and result.card.track2 == MAGSTRIPE_DECK[2].track2


@pytest.mark.parametrize("report_format", FORMATS)
def test_the_simulated_cashier_swipes_the_deck_in_turn(report_format: ReportFormat) -> None:
    with SimulatedHidMsrReader(report_format=report_format, swipe_delay_s=0.05, **FAST) as reader:
        for card in MAGSTRIPE_DECK[:3]:
            result = reader.read_card(AMOUNT, CURRENCY, WAIT_LIMIT_S)
            assert isinstance(result, CardRead) and result.card.track2 == card.track2


def test_an_empty_deck_swipes_nothing() -> None:
    with SimulatedHidMsrReader(deck=(), **FAST) as reader:
        assert isinstance(reader.read_card(AMOUNT, CURRENCY, 0.2), TimedOut)


def test_unplugged_while_the_flag_file_exists(tmp_path: Path) -> None:
    flag = tmp_path / "unplugged"
    with SimulatedHidMsrReader(deck=(), unplugged_while=str(flag), **FAST) as reader:
        flag.touch()
        wait_until(lambda: not reader.simulator.plugged)
        pending = Background(reader)
        wait_until(lambda: not reader.health().connected)
        flag.unlink()
        assert reader.simulator.wait_claimed(WAIT_LIMIT_S)
        wait_until(lambda: reader.status() is ReaderState.ARMED)
        reader.simulator.swipe(MAGSTRIPE_DECK[0])
        assert isinstance(pending.join(), CardRead)
        assert reader.health().reconnects == 1


def test_options_are_checked() -> None:
    with pytest.raises(OptionError, match="report_format"):
        SimulatedHidMsrReader(report_format="keyboard")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="swipe_delay_s"):
        SimulatedHidMsrReader(swipe_delay_s=-1)
    with pytest.raises(OptionError, match="report_format"):
        HidMsrReader(0x0801, 0x0002, report_format="keyboard")  # type: ignore[arg-type]


def test_the_driver_table_names_both_drivers() -> None:
    assert driver_class(CardReader, "hid-msr") is HidMsrReader
    assert driver_class(CardReader, "simulated-hid-msr") is SimulatedHidMsrReader


def test_a_swipe_split_across_many_packets_still_reads_when_slow() -> None:
    """MagTek's 337-byte report is 6 packets; a pause between them shorter than the gap is
    not a lost report."""
    with SimulatedHidMsrReader(deck=(), report_format=ReportFormat.MAGTEK, **FAST) as reader:
        pending = Background(reader)
        wait_until(lambda: armed(reader))
        report = MAGTEK.encode(MsrSwipe(track2=TrackRead(text=MAGSTRIPE_DECK[0].track2)))[0]
        for start in range(0, len(report), 64):
            reader.simulator.hid.send([report[start : start + 64]])
            time.sleep(0.03)
        assert isinstance(pending.join(), CardRead)
