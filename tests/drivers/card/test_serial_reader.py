"""The serial driver against the pty simulator: full reads and every fault in the issue.

Each test runs the real driver on a real pty through pyserial. Every wait is bounded (reader
timeouts are short; polling uses `wait_until`), so a regression fails instead of hanging.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from drivers.card.carddata import CardData, EntryMode
from drivers.card.deck import DeckCard, default_deck
from drivers.card.protocol import ErrorCode, Identify, ReaderState, StartTransaction
from drivers.card.results import CardRead, CardRemoved, CardUnreadable, ReadResult
from drivers.card.serial_reader import SerialCardReader
from drivers.card.tracks import build_track2
from drivers.errors import (
    DeviceDisconnected,
    DeviceInitError,
    DeviceOperationError,
    DeviceTimeout,
    LuhnError,
    ProtocolError,
    ReaderBusy,
    TrackLrcError,
)
from drivers.outcomes import Cancelled, Outcome, TimedOut
from drivers.sensitive import SecretStr
from tests.drivers.card.conftest import (
    ACK_TIMEOUT_S,
    INTER_BYTE_TIMEOUT_S,
    READER_OPTIONS,
    WAIT_LIMIT_S,
    assert_no_secret,
    wait_until,
)

READ_TIMEOUT_S = 3.0
AMOUNT = 1250
CURRENCY = "USD"


def attempt(reader: SerialCardReader, timeout: float = READ_TIMEOUT_S) -> ReadResult:
    return reader.read_card(AMOUNT, CURRENCY, timeout=timeout)


def read(reader: SerialCardReader, timeout: float = READ_TIMEOUT_S) -> CardData:
    """A transaction that must end with a card read: its card."""
    result = attempt(reader, timeout)
    assert isinstance(result, CardRead), f"expected a card, got {result.outcome}"
    return result.card


class Background:
    """Run `read_card` in a thread so the test can act on the simulator meanwhile."""

    def __init__(self, reader: SerialCardReader, timeout: float = READ_TIMEOUT_S) -> None:
        self.result: ReadResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(reader, timeout), daemon=True)
        self._thread.start()

    def _run(self, reader: SerialCardReader, timeout: float) -> None:
        try:
            self.result = attempt(reader, timeout)
        except BaseException as error:
            self.error = error

    def join(self) -> BaseException | ReadResult | None:
        self._thread.join(WAIT_LIMIT_S + READ_TIMEOUT_S)
        assert not self._thread.is_alive(), "read_card did not return"
        return self.error or self.result


# -- normal operation --------------------------------------------------------------------


def test_open_identifies_and_reports_health(reader: SerialCardReader, sim: Any) -> None:
    health = reader.health()
    assert health.connected and health.last_error is None
    assert health.info is not None
    assert (health.info.model, health.info.serial_number) == ("POSD-SIM-1", "SIM0001")
    assert health.info.port == sim.port and health.info.driver == "serial"
    assert reader.identify() == health.info
    assert reader.status() is ReaderState.IDLE


def test_reads_every_card_of_the_deck(reader: SerialCardReader, sim: Any) -> None:
    deck = default_deck()
    modes = set()
    for expected in deck:
        card = read(reader)
        assert card.valid
        assert card.entry_mode is expected.entry_mode
        modes.add(card.entry_mode)
        assert_no_secret(repr(card), card.pan.reveal())
    assert modes == set(EntryMode)
    assert sim.presented == [c.label for c in deck]
    assert StartTransaction(AMOUNT, CURRENCY) in sim.received
    assert reader.link is not None and reader.link.stats.resends == 0


def test_magstripe_read_carries_both_tracks(reader: SerialCardReader) -> None:
    card = read(reader)
    assert card.entry_mode is EntryMode.MAGSTRIPE
    assert card.track1 is not None and card.track2 is not None
    assert card.clear_metadata() == {
        "brand": "visa",
        "masked_pan": "411111******1111",
        "entry_mode": "magstripe",
    }


def test_delayed_presentation(reader: SerialCardReader, sim: Any) -> None:
    sim.present_after(0.3)
    started = time.monotonic()
    assert read(reader).valid
    assert time.monotonic() - started >= 0.3


# -- reader-reported outcomes and cancel -------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome", "kind"),
    [
        (ErrorCode.CARD_REMOVED, CardRemoved, Outcome.CARD_REMOVED),
        (ErrorCode.TIMEOUT, TimedOut, Outcome.TIMEOUT),
        (ErrorCode.CANCELLED, Cancelled, Outcome.CANCELLED),
        (ErrorCode.CARD_UNREADABLE, CardUnreadable, Outcome.CARD_UNREADABLE),
    ],
)
def test_reader_reported_ends_are_returned_as_outcomes(
    reader: SerialCardReader, sim: Any, code: ErrorCode, outcome: type[Any], kind: Outcome
) -> None:
    sim.fail_next(code)
    result = attempt(reader)
    assert isinstance(result, outcome) and result.outcome is kind
    assert reader.health().last_error is None  # an outcome says nothing bad about the reader
    assert read(reader).valid  # the next transaction is unaffected


@pytest.mark.parametrize(
    ("code", "fault"), [(ErrorCode.BAD_REQUEST, ProtocolError), (ErrorCode.BUSY, ReaderBusy)]
)
def test_reader_reported_faults_raise(
    reader: SerialCardReader, sim: Any, code: ErrorCode, fault: type[Exception]
) -> None:
    sim.fail_next(code)
    with pytest.raises(fault, match=f"reader reported {code.value}"):
        attempt(reader)
    assert read(reader).valid


def test_cancel_from_another_thread(reader: SerialCardReader, sim: Any) -> None:
    sim.hold_cards()
    pending = Background(reader)
    wait_until(lambda: sim.armed)
    reader.cancel()
    assert isinstance(pending.join(), Cancelled)
    assert not sim.armed
    sim.hold_cards(False)
    assert read(reader).valid


def test_cancel_when_idle_disarms_the_reader(reader: SerialCardReader, sim: Any) -> None:
    sim.armed = True  # armed by a transaction the host lost track of
    reader.cancel()
    assert not sim.armed


def test_busy_reader_is_disarmed_and_armed_again(reader: SerialCardReader, sim: Any) -> None:
    sim.armed = True
    assert read(reader).valid


def test_no_card_in_time_is_a_timed_out_outcome_and_disarms(
    reader: SerialCardReader, sim: Any
) -> None:
    sim.hold_cards()
    started = time.monotonic()
    assert isinstance(attempt(reader, timeout=0.3), TimedOut)
    assert 0.3 <= time.monotonic() - started < 0.3 + WAIT_LIMIT_S / 2
    assert not sim.armed
    assert reader.health().connected and reader.health().last_error is None


# -- card data validation ----------------------------------------------------------------


def _swipe(track2: str) -> DeckCard:
    return DeckCard("custom", EntryMode.MAGSTRIPE, track2=SecretStr(track2))


def test_bad_track_lrc_is_refused(reader: SerialCardReader, sim: Any) -> None:
    good = build_track2("4111111111111111", "3012", "201")  # Visa public test number
    sim.queue_card(_swipe(good[:-1] + ("0" if good[-1] != "0" else "1")))
    with pytest.raises(TrackLrcError) as info:
        read(reader)
    assert_no_secret(str(info.value), "4111111111111111")


def test_luhn_invalid_card_is_refused(reader: SerialCardReader, sim: Any) -> None:
    sim.queue_card(_swipe(build_track2("4111111111111112", "3012", "201")))
    with pytest.raises(LuhnError):
        read(reader)


# -- link faults ---------------------------------------------------------------------------


def test_bad_frame_lrc_is_naked_and_resent(reader: SerialCardReader, sim: Any) -> None:
    sim.corrupt_lrc(2)  # the OK|ST answer and the card data both arrive corrupted first
    assert read(reader).valid
    assert reader.link is not None and reader.link.stats.naks_sent == 2
    assert sim.link.stats.resends == 2


@pytest.mark.parametrize(
    "noise", [b"\x00\xff\x7f~noise~\x03\x13\x11", b"\x02half a frame", b"\x02\x03", b"\xff" * 64]
)
def test_noise_between_frames(reader: SerialCardReader, sim: Any, noise: bytes) -> None:
    sim.add_noise(noise, frames=2)
    assert read(reader).valid
    assert reader.link is not None
    assert reader.link.noise_bytes + reader.link.stats.bad_frames > 0


def test_split_bytes(reader: SerialCardReader, sim: Any) -> None:
    sim.split_writes(1, INTER_BYTE_TIMEOUT_S / 10)
    assert read(reader).valid
    assert reader.link is not None and reader.link.stats.bad_frames == 0


def test_bytes_slower_than_the_inter_byte_timeout(reader: SerialCardReader, sim: Any) -> None:
    sim.split_writes(4, INTER_BYTE_TIMEOUT_S * 3)
    with pytest.raises(DeviceTimeout):
        read(reader)
    assert reader.link is not None and reader.link.stats.bad_frames >= 1
    assert reader.link.stats.naks_sent >= 1
    sim.split_writes(0, 0.0)
    wait_until(lambda: _status_ok(reader))  # recovers once bytes flow normally again


def test_nak_storm_within_the_resend_budget(reader: SerialCardReader, sim: Any) -> None:
    sim.nak_frames(3)
    assert reader.status() is ReaderState.IDLE
    assert reader.link is not None
    assert reader.link.stats.naks_received == 3 and reader.link.stats.resends == 3


def test_nak_storm_beyond_the_budget(reader: SerialCardReader, sim: Any) -> None:
    sim.nak_frames(4)
    with pytest.raises(ProtocolError, match="rejected the frame 4 of 4"):
        reader.status()
    health = reader.health()
    assert health.connected  # it answers, just badly: not a disconnect
    assert health.last_error is not None and health.last_error.startswith("device_protocol")
    assert reader.status() is ReaderState.IDLE  # recovers once the storm passes


def test_short_silence_is_covered_by_resends(reader: SerialCardReader, sim: Any) -> None:
    sim.go_silent(2)
    assert reader.status() is ReaderState.IDLE
    assert reader.link is not None and reader.link.stats.ack_timeouts == 2


def test_silence_times_out_in_bounded_time(reader: SerialCardReader, sim: Any) -> None:
    sim.go_silent()
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match="no ACK after 4 transmissions"):
        reader.status()
    elapsed = time.monotonic() - started
    assert 4 * ACK_TIMEOUT_S <= elapsed < 4 * ACK_TIMEOUT_S + 1.0
    health = reader.health()
    assert health.last_error is not None and health.last_error.startswith("device_timeout")


# -- unplug / replug -----------------------------------------------------------------------


def test_unplug_and_replug_while_waiting_for_a_card(reader: SerialCardReader, sim: Any) -> None:
    sim.hold_cards()
    pending = Background(reader, timeout=WAIT_LIMIT_S)
    wait_until(lambda: sim.armed)
    sim.unplug()
    wait_until(lambda: not reader.health().connected)
    down = reader.health()
    assert down.disconnected_since is not None and down.disconnects == 1
    assert down.last_error is not None
    time.sleep(0.2)  # a few backoff rounds against a missing device
    sim.hold_cards(False)
    sim.replug()
    outcome = pending.join()
    assert isinstance(outcome, CardRead) and outcome.card.valid
    up = reader.health()
    assert up.connected and up.reconnects == 1 and up.disconnects == 1
    assert up.disconnected_since is None
    assert sim.plug_count == 2
    # Identified and armed again on the new pty: once before the unplug, once after.
    assert sim.received.count(StartTransaction(AMOUNT, CURRENCY)) == 2
    assert sim.received.count(Identify()) == 2


def test_cancel_while_waiting_for_an_unplugged_reader_is_cancelled(
    reader: SerialCardReader, sim: Any
) -> None:
    sim.hold_cards()
    pending = Background(reader, timeout=WAIT_LIMIT_S)
    wait_until(lambda: sim.armed)
    sim.unplug()
    wait_until(lambda: reader.health().next_retry_in_s is not None)  # backing off
    started = time.monotonic()
    reader.cancel()
    assert isinstance(pending.join(), Cancelled)
    assert time.monotonic() - started < 1.0  # woken at once, not at the read's deadline
    assert not reader.health().connected
    sim.replug()
    sim.hold_cards(False)
    wait_until(lambda: _status_ok(reader))
    assert read(reader).valid


def test_unplugged_for_good_fails_with_disconnected(reader: SerialCardReader, sim: Any) -> None:
    sim.unplug()
    started = time.monotonic()
    with pytest.raises(DeviceDisconnected):
        read(reader, timeout=0.5)
    assert time.monotonic() - started < 0.5 + 1.0
    health = reader.health()
    assert not health.connected
    assert health.last_error is not None
    assert health.next_retry_in_s is not None
    sim.replug()
    wait_until(lambda: _status_ok(reader))
    assert reader.health().connected and reader.health().reconnects == 1


def _status_ok(reader: SerialCardReader) -> bool:
    try:
        return reader.status() is ReaderState.IDLE
    except DeviceDisconnected:
        return False


def test_open_fails_cleanly_without_a_device(tmp_path: Any) -> None:
    reader = SerialCardReader(str(tmp_path / "missing"), **READER_OPTIONS)
    with pytest.raises(DeviceInitError, match="cannot open card reader port"):
        reader.open()
    assert not reader.is_open
    health = reader.health()
    assert not health.connected and health.last_error is not None


def test_loop_url_is_accepted_but_no_reader_answers() -> None:
    # serial_for_url: loop:// echoes our own frames back; that is not a card reader.
    reader = SerialCardReader("loop://", **READER_OPTIONS)
    with pytest.raises(DeviceInitError, match="did not identify"):
        reader.open()


def test_closed_reader_refuses_operations(sim: Any) -> None:
    reader = SerialCardReader(sim.port, **READER_OPTIONS)
    with reader:
        pass
    with pytest.raises(DeviceOperationError, match="not open"):
        reader.status()


def test_logs_say_what_happened_without_card_data(
    reader: SerialCardReader, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cards = [read(reader) for _ in range(3)]
    sim.unplug()
    with pytest.raises(DeviceDisconnected):
        reader.status()
    sim.replug()
    wait_until(lambda: _status_ok(reader))
    assert "disconnected" in caplog.text and "is back" in caplog.text
    for card in cards:
        assert_no_secret(caplog.text, card.pan.reveal())
