"""What the HID reader tests share: a rig (reader + simulated device + how to swipe a card),
a minimal test reader on the foundation, and the suite every HID reader class must pass.

`HidReaderSuite` holds the foundation's behaviour (stale swipes dropped, unplug and replug,
malformed reports, cancel, timeout, no card data in output, nothing typed into the desktop);
each reader class runs it by subclassing it as `Test...` with a `rig` fixture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.base import DeviceInfo
from drivers.card.carddata import EntryMode
from drivers.card.deck import DeckCard, default_deck
from drivers.card.hid_reader import HidCardReader, SwipeAssembler
from drivers.card.protocol import ReaderState
from drivers.card.results import CardRead, CardUnreadable, ReadResult
from drivers.card.tracks import parse_swipe
from drivers.errors import DeviceDisconnected, DeviceOperationError, ProtocolError
from drivers.outcomes import Cancelled, TimedOut
from drivers.usb.hid_sim import SimulatedHidBackend, SimulatedHidFunction
from drivers.usb.sim_backend import UsbIdentity
from tests.drivers.card.conftest import WAIT_LIMIT_S, assert_no_secret, wait_until

AMOUNT = 1250
CURRENCY = "EUR"
FAST: dict[str, Any] = {"report_poll_s": 0.02, "backoff_initial_s": 0.02, "backoff_max_s": 0.1}
MAGSTRIPE_DECK = tuple(card for card in default_deck() if card.entry_mode is EntryMode.MAGSTRIPE)


def swipe_text(card: DeckCard) -> str:
    """What a reader that hands over clear tracks sends for `card`: `%...?;...?`."""
    return card.track1.reveal() + card.track2.reveal()


@dataclass
class HidRig:
    """A HID reader under test, its simulated device, and how that device swipes a card."""

    reader: HidCardReader
    simulator: SimulatedHidBackend
    swipe: Callable[[DeckCard], None]
    #: One input report this reader's assembler refuses.
    malformed_report: bytes
    #: What the reader sends for a swipe it could not read (`%E?;E?`).
    bad_swipe: Callable[[], None]


# -- a minimal reader on the foundation: 8-byte reports of (length, up to 7 ASCII chars) ----

LINE_REPORT_SIZE = 8
LINE_CHUNK = LINE_REPORT_SIZE - 1
LINE_END = "\r"
LINE_MALFORMED = 0xFF
LINE_VENDOR_ID = 0x1D6B
LINE_PRODUCT_ID = 0x01F0
LINE_IDENTITY = UsbIdentity(
    LINE_VENDOR_ID, LINE_PRODUCT_ID, "posd tests", "line reader", "LINE-1", 0x0102
)


def line_reports(text: str) -> list[bytes]:
    data = (text + LINE_END).encode("ascii")
    chunks = [data[i : i + LINE_CHUNK] for i in range(0, len(data), LINE_CHUNK)]
    return [bytes([len(chunk)]) + chunk.ljust(LINE_CHUNK, b"\0") for chunk in chunks]


class LineAssembler(SwipeAssembler):
    def __init__(self) -> None:
        self._text = bytearray()

    def feed(self, report: bytes, now: float) -> bytes | None:
        if len(report) != LINE_REPORT_SIZE or report[0] > LINE_CHUNK:
            raise ProtocolError("line reader sent a malformed report")
        self._text += report[1 : 1 + report[0]]
        if self._text.endswith(LINE_END.encode()):
            swipe = bytes(self._text[:-1])
            self.reset()
            return swipe
        return None

    @property
    def in_progress(self) -> bool:
        return bool(self._text)

    def reset(self) -> None:
        self._text.clear()


class SimulatedLineReader(HidCardReader):
    driver_name = "test-line"

    def __init__(self, identity: UsbIdentity = LINE_IDENTITY, **options: Any) -> None:
        self.simulator = SimulatedHidBackend(SimulatedHidFunction(identity, b"\x06\x00\xff"))
        super().__init__(LINE_VENDOR_ID, LINE_PRODUCT_ID, identity.serial_number, **options)

    def _usb_backend(self) -> SimulatedHidBackend:
        return self.simulator

    def _assembler(self) -> SwipeAssembler:
        return LineAssembler()

    def _decode(self, swipe: bytes) -> ReadResult:
        text = swipe.decode("ascii")
        if "E?" in text:
            return CardUnreadable()
        return CardRead(parse_swipe(text))


def line_rig() -> Iterator[HidRig]:
    with SimulatedLineReader(**FAST) as reader:
        sim = reader.simulator
        yield HidRig(
            reader=reader,
            simulator=sim,
            swipe=lambda card: sim.send(line_reports(swipe_text(card))),
            malformed_report=bytes([LINE_MALFORMED]) + bytes(LINE_CHUNK),
            bad_swipe=lambda: sim.send(line_reports("%E?;E?")),
        )


# -- helpers --------------------------------------------------------------------------------


class Background:
    """`read_card` on another thread; `join()` returns its result or raises its error."""

    def __init__(self, reader: HidCardReader, timeout: float = WAIT_LIMIT_S) -> None:
        self._result: ReadResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(reader, timeout), daemon=True)
        self._thread.start()

    def _run(self, reader: HidCardReader, timeout: float) -> None:
        try:
            self._result = reader.read_card(AMOUNT, CURRENCY, timeout)
        except BaseException as error:  # handed to the test thread
            self._error = error

    def join(self) -> ReadResult:
        self._thread.join(WAIT_LIMIT_S * 2)
        assert not self._thread.is_alive(), "read_card did not return"
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def armed(reader: HidCardReader) -> bool:
    return reader.status() is ReaderState.ARMED


def read_swiped(rig: HidRig, card: DeckCard) -> ReadResult:
    pending = Background(rig.reader)
    wait_until(lambda: armed(rig.reader))
    rig.swipe(card)
    return pending.join()


def idle_again(reader: HidCardReader) -> bool:
    try:
        return reader.status() is ReaderState.IDLE
    except DeviceDisconnected:
        return False


# -- the suite ------------------------------------------------------------------------------


class HidReaderSuite:
    """The HID foundation's behaviour, for any reader class (subclass it with a `rig`)."""

    def test_open_claims_the_device_and_identifies_it_from_descriptors(self, rig: HidRig) -> None:
        info = rig.reader.identify()
        assert isinstance(info, DeviceInfo)
        identity = rig.simulator.function.identity
        assert info.model == identity.product
        assert info.serial_number == identity.serial_number
        assert info.firmware == f"{identity.bcd_device >> 8:x}.{identity.bcd_device & 0xFF:02x}"
        assert info.driver == rig.reader.driver_name and info.port.startswith("usb:")
        assert rig.reader.health().connected
        assert not rig.simulator.kernel_driver_bound()
        assert rig.simulator.kernel_driver_detaches == 1
        assert rig.reader.status() is ReaderState.IDLE

    def test_every_magstripe_deck_card_reads_and_nothing_reaches_the_desktop(
        self, rig: HidRig
    ) -> None:
        for card in MAGSTRIPE_DECK:
            result = read_swiped(rig, card)
            assert isinstance(result, CardRead)
            assert result.card.valid
            assert result.card.track2 == card.track2
        assert rig.simulator.typed_into_desktop == []

    def test_a_swipe_before_the_read_is_never_charged(self, rig: HidRig) -> None:
        stale, wanted = MAGSTRIPE_DECK[0], MAGSTRIPE_DECK[1]
        rig.swipe(stale)
        result = read_swiped(rig, wanted)
        assert isinstance(result, CardRead) and result.card.track2 == wanted.track2
        assert rig.reader.stale_reports_dropped > 0
        assert rig.simulator.typed_into_desktop == []

    def test_a_swipe_between_reads_is_dropped_too(self, rig: HidRig) -> None:
        first, stale, wanted = MAGSTRIPE_DECK[:3]
        assert isinstance(read_swiped(rig, first), CardRead)
        rig.swipe(stale)
        result = read_swiped(rig, wanted)
        assert isinstance(result, CardRead) and result.card.track2 == wanted.track2

    def test_unplug_while_waiting_then_replug_still_reads(self, rig: HidRig) -> None:
        pending = Background(rig.reader)
        wait_until(lambda: armed(rig.reader))
        rig.simulator.unplug()
        wait_until(lambda: not rig.reader.health().connected)
        time.sleep(0.1)  # a few backoff rounds against a missing device
        rig.simulator.replug()
        assert rig.simulator.wait_claimed(WAIT_LIMIT_S)
        rig.swipe(MAGSTRIPE_DECK[0])
        result = pending.join()
        assert isinstance(result, CardRead) and result.card.valid
        health = rig.reader.health()
        assert health.connected and health.reconnects == 1 and health.disconnects == 1
        assert rig.simulator.kernel_driver_detaches == 2  # bound again at the replug
        assert rig.simulator.typed_into_desktop == []

    def test_unplugged_for_good_is_disconnected_by_the_deadline(self, rig: HidRig) -> None:
        rig.simulator.unplug()
        started = time.monotonic()
        with pytest.raises(DeviceDisconnected):
            rig.reader.read_card(AMOUNT, CURRENCY, 0.3)
        assert time.monotonic() - started < 0.3 + 1.0
        assert not rig.reader.health().connected
        rig.simulator.replug()
        wait_until(lambda: idle_again(rig.reader))
        assert rig.reader.health().connected

    def test_a_malformed_report_is_unreadable_and_the_next_swipe_reads(self, rig: HidRig) -> None:
        pending = Background(rig.reader)
        wait_until(lambda: armed(rig.reader))
        rig.simulator.send([rig.malformed_report])
        assert isinstance(pending.join(), CardUnreadable)
        health = rig.reader.health()
        assert health.connected and health.last_error is not None
        assert health.last_error.startswith(ProtocolError.code)
        result = read_swiped(rig, MAGSTRIPE_DECK[0])
        assert isinstance(result, CardRead) and result.card.valid

    def test_a_swipe_the_reader_flags_bad_is_unreadable(self, rig: HidRig) -> None:
        pending = Background(rig.reader)
        wait_until(lambda: armed(rig.reader))
        rig.bad_swipe()
        assert isinstance(pending.join(), CardUnreadable)

    def test_cancel_from_another_thread_ends_the_read_promptly(self, rig: HidRig) -> None:
        pending = Background(rig.reader)
        wait_until(lambda: armed(rig.reader))
        started = time.monotonic()
        rig.reader.cancel()
        assert isinstance(pending.join(), Cancelled)
        assert time.monotonic() - started < 0.5
        assert rig.reader.status() is ReaderState.IDLE

    def test_cancel_while_waiting_for_an_unplugged_reader(self, rig: HidRig) -> None:
        pending = Background(rig.reader)
        wait_until(lambda: armed(rig.reader))
        rig.simulator.unplug()
        wait_until(lambda: rig.reader.health().next_retry_in_s is not None)
        rig.reader.cancel()
        assert isinstance(pending.join(), Cancelled)
        rig.simulator.replug()
        wait_until(lambda: idle_again(rig.reader))

    def test_no_swipe_in_time_is_timed_out(self, rig: HidRig) -> None:
        started = time.monotonic()
        assert isinstance(rig.reader.read_card(AMOUNT, CURRENCY, 0.2), TimedOut)
        assert 0.2 <= time.monotonic() - started < 1.0

    def test_closed_reader_refuses_reads_and_keeps_the_kernel_driver_away(
        self, rig: HidRig
    ) -> None:
        rig.reader.close()
        assert not rig.simulator.kernel_driver_bound()
        rig.swipe(MAGSTRIPE_DECK[0])  # after the daemon let go: typed nowhere
        assert rig.simulator.typed_into_desktop == []
        with pytest.raises(DeviceOperationError):
            rig.reader.read_card(AMOUNT, CURRENCY, 0.1)

    def test_no_card_number_in_reprs_logs_or_output(
        self,
        rig: HidRig,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        caplog.set_level(logging.DEBUG)
        card = MAGSTRIPE_DECK[0]
        rig.swipe(MAGSTRIPE_DECK[1])  # stale: dropped, logged
        result = read_swiped(rig, card)
        assert isinstance(result, CardRead)
        pending = Background(rig.reader)
        wait_until(lambda: armed(rig.reader))
        rig.simulator.send([rig.malformed_report])
        assert isinstance(pending.join(), CardUnreadable)
        rig.simulator.unplug()
        with pytest.raises(DeviceDisconnected) as caught:
            rig.reader.read_card(AMOUNT, CURRENCY, 0.1)
        print(repr(result), result, repr(rig.reader), rig.reader.health(), caught.value)
        captured = capsys.readouterr()
        assert "reconnecting" in caplog.text and "dropped" in caplog.text
        for text in (caplog.text, captured.out, captured.err):
            for secret in (result.card.pan.reveal(), card.track2.reveal()):
                assert_no_secret(text, secret)
