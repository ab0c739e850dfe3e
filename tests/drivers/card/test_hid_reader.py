"""The USB HID reader foundation (`drivers.card.hid_reader`), on a minimal test reader."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.errors import DeviceInitError, OptionError
from tests.drivers.card.hid_rig import FAST, HidReaderSuite, HidRig, SimulatedLineReader, line_rig


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
