"""The USB HID reader foundation (`drivers.card.hid_reader`), on a minimal test reader."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from drivers.card.results import CardRead
from drivers.errors import DeviceInitError, OptionError, ProtocolError
from drivers.usb.hid_sim import EP_IN, SimulatedHidBackend
from drivers.usb.link import MAX_DESCRIPTOR_TEXT, MAX_STALL_RECOVERIES
from tests.drivers.card.conftest import wait_until
from tests.drivers.card.hid_rig import (
    AMOUNT,
    CURRENCY,
    FAST,
    LINE_IDENTITY,
    MAGSTRIPE_DECK,
    Background,
    HidReaderSuite,
    HidRig,
    SimulatedLineReader,
    armed,
    line_reports,
    line_rig,
    swipe_text,
)

# Longer than a few ms (the drain once stopped there), far shorter than any swipe's own gap.
REPORT_SPACING_S = 0.02


@pytest.fixture
def rig() -> Iterator[HidRig]:
    yield from line_rig()


class TestLineReader(HidReaderSuite):
    """The foundation's suite on a reader whose reports are plain text."""


def test_open_fails_cleanly_without_the_device() -> None:
    reader = SimulatedLineReader(**FAST)
    reader.simulator.unplug()
    with pytest.raises(DeviceInitError, match="no card reader"):
        reader.open()
    assert not reader.is_open and not reader.health().connected


def test_options_are_checked() -> None:
    with pytest.raises(OptionError, match="report_poll_s"):
        SimulatedLineReader(report_poll_s=0)
    with pytest.raises(OptionError, match="interface"):
        SimulatedLineReader(interface=-1)


def trickle(simulator: SimulatedHidBackend, reports: list[bytes]) -> None:
    """Send `reports` one by one, as a slow reader does while a swipe is still going on."""
    for report in reports:
        time.sleep(REPORT_SPACING_S)
        simulator.send([report])


def test_a_swipe_still_arriving_when_the_read_starts_is_dropped_whole(rig: HidRig) -> None:
    stale, wanted = MAGSTRIPE_DECK[:2]
    reports = line_reports(swipe_text(stale))
    rig.simulator.send(reports[:1])
    sender = threading.Thread(target=trickle, args=(rig.simulator, reports[1:]), daemon=True)
    sender.start()
    pending = Background(rig.reader)
    wait_until(lambda: armed(rig.reader))
    sender.join()
    rig.swipe(wanted)
    result = pending.join()
    assert isinstance(result, CardRead) and result.card.track2 == wanted.track2
    assert rig.reader.stale_reports_dropped == len(reports)


def test_an_error_while_dropping_stale_reports_is_recorded_in_health(rig: HidRig) -> None:
    rig.simulator.stall(EP_IN, count=MAX_STALL_RECOVERIES + 1)  # stalls past every recovery
    with pytest.raises(ProtocolError):
        rig.reader.read_card(AMOUNT, CURRENCY, 1.0)
    last_error = rig.reader.health().last_error
    assert last_error is not None and last_error.startswith(ProtocolError.code)


def test_descriptor_strings_reach_health_and_logs_printable_and_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A device names itself: newlines or escapes in its strings must not forge log lines."""
    caplog.set_level(logging.INFO)
    hostile = replace(
        LINE_IDENTITY,
        product="reader\nERROR forged line\x1b[2J" + "x" * 80,
        serial_number="SN\r\n1\x00",
    )
    with SimulatedLineReader(hostile, **FAST) as reader:
        info = reader.identify()
    for text in (info.model, info.serial_number):
        assert text.isprintable() and 0 < len(text) <= MAX_DESCRIPTOR_TEXT
    assert info.model.startswith("reader") and info.serial_number.startswith("SN")
    assert "\nERROR forged line" not in caplog.text and "\x1b" not in caplog.text
