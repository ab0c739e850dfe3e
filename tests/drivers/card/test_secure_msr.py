"""The `secure-msr` driver end to end through pyusb on the simulated encrypting reader: the HID
foundation's suite (its clear-card checks swapped for encrypted ones), every deck card read
encrypted and decrypted here with the test BDK, KSNs advancing, counter exhaustion reported,
pre-encrypted swipes files, and no clear card number anywhere the driver shows."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.card import dukpt
from drivers.card.deck import DeckCard
from drivers.card.hid_reader import MAX_REPORT_SIZE
from drivers.card.report_gap import REPORT_GAP_S
from drivers.card.results import CardUnreadable, EncryptedCardRead, ReadResult
from drivers.card.secure_formats import SwipeKeys, encode_enhanced
from drivers.card.secure_msr import MAX_REPLAY_KEYS, EnhancedSwipeAssembler, swipe_reports
from drivers.card.secure_msr_sim import SimulatedSecureMsrReader, write_swipes
from drivers.card.secure_swipes import (
    SIM_DEVICE_SERIAL,
    TEST_BDK,
    TEST_INITIAL_KSN,
    ksn_at,
    magstripe_tracks,
)
from drivers.errors import (
    EncryptedFormatError,
    KsnReplayed,
    OptionError,
    ReaderEncryptionUnsupported,
)
from drivers.outcomes import TimedOut
from tests.drivers.card.conftest import WAIT_LIMIT_S, assert_no_secret, wait_until
from tests.drivers.card.hid_rig import (
    AMOUNT,
    CURRENCY,
    FAST,
    MAGSTRIPE_DECK,
    Background,
    HidReaderSuite,
    HidRig,
    armed,
    read_swiped,
)
from tests.repo import REPO_ROOT
from wire.masking import mask_pan
from wire.p2pe import DukptScheme

TDES = DukptScheme.TDES_2KEY
MALFORMED_REPORT = bytes([0x55]) + bytes(MAX_REPORT_SIZE - 1)  # does not start a swipe
LAST_TDES_COUNTER = 0x1FF800
REINJECTED_KSN = bytes.fromhex("FFFF0000000000200001")  # another device id, counter 1
SWIPE = encode_enhanced(
    magstripe_tracks(MAGSTRIPE_DECK[0]), SwipeKeys(TEST_BDK[TDES], ksn_at(TDES, 1), TDES, "S")
)


def deck_pan(card: DeckCard) -> str:
    track2 = card.track2.reveal()
    return track2[1 : track2.index("=")]


def assert_encrypted_read_of(result: ReadResult, card: DeckCard, scheme: DukptScheme) -> None:
    """The masked PAN is the card's, and each encrypted track decrypts to the card's track."""
    assert isinstance(result, EncryptedCardRead), result
    read = result.card
    assert read.pan.masked == mask_pan(deck_pan(card))
    assert read.scheme is scheme and read.device_serial == SIM_DEVICE_SERIAL
    clear_tracks = {1: card.track1.reveal(), 2: card.track2.reveal()}
    assert sorted(track.track for track in read.tracks) == [1, 2]
    for track in read.tracks:
        clear = dukpt.decrypt(TEST_BDK[scheme], read.ksn, scheme, track.ciphertext)
        assert clear[: track.length].decode("ascii") == clear_tracks[track.track]


def rig_for(reader: SimulatedSecureMsrReader) -> HidRig:
    sim = reader.simulator
    return HidRig(
        reader=reader,
        simulator=sim,
        swipe=sim.swipe,
        malformed_report=MALFORMED_REPORT,
        bad_swipe=lambda: sim.swipe(None),
    )


@pytest.fixture
def rig() -> Iterator[HidRig]:
    with SimulatedSecureMsrReader(deck=(), **FAST) as reader:
        yield rig_for(reader)


class TestSecureMsrReader(HidReaderSuite):
    """The foundation's suite; the tests that expect clear card data check encrypted reads."""

    def test_every_magstripe_deck_card_reads_and_nothing_reaches_the_desktop(
        self, rig: HidRig
    ) -> None:
        counters = []
        for card in MAGSTRIPE_DECK:
            result = read_swiped(rig, card)
            assert_encrypted_read_of(result, card, TDES)
            assert isinstance(result, EncryptedCardRead)
            counters.append(dukpt.counter(result.card.ksn, TDES))
        assert counters == list(range(1, len(MAGSTRIPE_DECK) + 1))  # a KSN per swipe
        assert rig.simulator.typed_into_desktop == []

    def test_a_swipe_before_the_read_is_never_charged(self, rig: HidRig) -> None:
        stale, wanted = MAGSTRIPE_DECK[0], MAGSTRIPE_DECK[1]
        rig.swipe(stale)
        assert_encrypted_read_of(read_swiped(rig, wanted), wanted, TDES)
        assert rig.reader.stale_reports_dropped > 0

    def test_a_swipe_between_reads_is_dropped_too(self, rig: HidRig) -> None:
        first, stale, wanted = MAGSTRIPE_DECK[:3]
        assert_encrypted_read_of(read_swiped(rig, first), first, TDES)
        rig.swipe(stale)
        assert_encrypted_read_of(read_swiped(rig, wanted), wanted, TDES)

    def test_unplug_while_waiting_then_replug_still_reads(self, rig: HidRig) -> None:
        pending = Background(rig.reader)
        wait_until(lambda: armed(rig.reader))
        rig.simulator.unplug()
        wait_until(lambda: not rig.reader.health().connected)
        time.sleep(0.1)
        rig.simulator.replug()
        assert rig.simulator.wait_claimed(WAIT_LIMIT_S)
        rig.swipe(MAGSTRIPE_DECK[0])
        assert_encrypted_read_of(pending.join(), MAGSTRIPE_DECK[0], TDES)
        health = rig.reader.health()
        assert health.connected and health.reconnects == 1 and health.disconnects == 1

    def test_a_malformed_report_is_unreadable_and_the_next_swipe_reads(self, rig: HidRig) -> None:
        pending = Background(rig.reader)
        wait_until(lambda: armed(rig.reader))
        rig.simulator.send([rig.malformed_report])
        assert isinstance(pending.join(), CardUnreadable)
        assert rig.reader.health().last_error is not None
        assert_encrypted_read_of(read_swiped(rig, MAGSTRIPE_DECK[0]), MAGSTRIPE_DECK[0], TDES)

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
        assert isinstance(result, EncryptedCardRead)
        pending = Background(rig.reader)
        wait_until(lambda: armed(rig.reader))
        rig.simulator.send([rig.malformed_report])
        assert isinstance(pending.join(), CardUnreadable)
        status = rig.reader.p2pe_status()
        print(repr(result), result, result.card, repr(rig.reader), rig.reader.health(), status)
        captured = capsys.readouterr()
        assert "dropped" in caplog.text
        for text in (caplog.text, captured.out, captured.err):
            for secret in (deck_pan(card), deck_pan(MAGSTRIPE_DECK[1]), card.track2.reveal()):
                assert_no_secret(text, secret)


def test_a_swipe_with_a_bad_check_across_reports_is_unreadable(rig: HidRig) -> None:
    assert isinstance(rig.reader, SimulatedSecureMsrReader)
    swipe = bytearray(rig.reader.simulator.head.swipe({1: MAGSTRIPE_DECK[0].track1}))
    swipe[-3] ^= 0x01  # the LRC
    assert len(swipe) > MAX_REPORT_SIZE
    pending = Background(rig.reader)
    wait_until(lambda: armed(rig.reader))
    rig.simulator.send(swipe_reports(bytes(swipe)))
    assert isinstance(pending.join(), CardUnreadable)
    assert (rig.reader.health().last_error or "").startswith(EncryptedFormatError.code)


def test_a_reader_on_another_scheme_is_refused(rig: HidRig) -> None:
    keys = SwipeKeys(
        TEST_BDK[DukptScheme.AES_128], ksn_at(DukptScheme.AES_128, 1), DukptScheme.AES_128, "S"
    )
    swipe = encode_enhanced({2: MAGSTRIPE_DECK[0].track2}, keys)
    pending = Background(rig.reader)
    wait_until(lambda: armed(rig.reader))
    rig.simulator.send(swipe_reports(swipe))
    with pytest.raises(ReaderEncryptionUnsupported):
        pending.join()


def swiped_reports(rig: HidRig, reports: list[bytes]) -> ReadResult:
    pending = Background(rig.reader)
    wait_until(lambda: armed(rig.reader))
    rig.simulator.send(reports)
    return pending.join()


def test_a_swipe_sent_again_is_refused_as_a_replay(rig: HidRig) -> None:
    """The same encrypted reports a second time (a sniffed swipe replayed by a hostile
    device): its KSN does not advance, so it is refused, not charged twice. A later genuine
    swipe, and one under a newly injected key (its counter back at 1), still read."""
    assert isinstance(swiped_reports(rig, swipe_reports(SWIPE)), EncryptedCardRead)
    with pytest.raises(KsnReplayed) as refused:
        swiped_reports(rig, swipe_reports(SWIPE))
    assert "KSN counter 1 does not advance past 1" in str(refused.value)
    assert rig.reader.health().last_error == KsnReplayed.__name__  # card errors: type only
    tracks = magstripe_tracks(MAGSTRIPE_DECK[0])
    for ksn in (ksn_at(TDES, 2), REINJECTED_KSN):
        swipe = encode_enhanced(tracks, SwipeKeys(TEST_BDK[TDES], ksn, TDES, "S"))
        assert isinstance(swiped_reports(rig, swipe_reports(swipe)), EncryptedCardRead)


def swipe_under(initial_ksn: bytes, counter: int) -> list[bytes]:
    """The first deck card's reports, encrypted under that reader's KSN with this counter."""
    keys = SwipeKeys(TEST_BDK[TDES], ksn_at(TDES, counter, initial_ksn), TDES, "S")
    return swipe_reports(encode_enhanced(magstripe_tracks(MAGSTRIPE_DECK[0]), keys))


def test_a_replay_alternating_with_another_keys_swipe_is_refused(rig: HidRig) -> None:
    """Swipes of two keys taking turns (A under X, B under Y, A, B, A) do not reset the
    check: each key's highest counter is kept, and only the first A and B read."""
    a = swipe_under(TEST_INITIAL_KSN[TDES], 5)
    b = swipe_under(REINJECTED_KSN, 1)
    assert isinstance(swiped_reports(rig, a), EncryptedCardRead)
    assert isinstance(swiped_reports(rig, b), EncryptedCardRead)
    for replay in (a, b, a):
        with pytest.raises(KsnReplayed):
            swiped_reports(rig, replay)
    assert isinstance(rig.reader, SimulatedSecureMsrReader)
    status = rig.reader.p2pe_status()
    assert status.last_ksn is not None and dukpt.key_id(status.last_ksn, TDES) == (
        dukpt.key_id(REINJECTED_KSN, TDES)
    )  # the latest read, not the latest refused


def test_the_replay_check_remembers_a_bounded_number_of_keys(rig: HidRig) -> None:
    """Past `MAX_REPLAY_KEYS` keys the oldest is forgotten (its replay reads again: the
    cloud still refuses it); the ones after it are still checked."""
    readers = [
        (int.from_bytes(REINJECTED_KSN, "big") + (index << 24)).to_bytes(len(REINJECTED_KSN), "big")
        for index in range(MAX_REPLAY_KEYS + 1)
    ]
    for initial_ksn in readers:
        assert isinstance(swiped_reports(rig, swipe_under(initial_ksn, 3)), EncryptedCardRead)
    with pytest.raises(KsnReplayed):
        swiped_reports(rig, swipe_under(readers[1], 3))
    assert isinstance(swiped_reports(rig, swipe_under(readers[0], 3)), EncryptedCardRead)


def test_the_assembler_takes_a_swipe_over_reports_and_drops_the_padding() -> None:
    assembler = EnhancedSwipeAssembler()
    reports = swipe_reports(SWIPE)
    assert len(reports) > 1 and all(len(report) == MAX_REPORT_SIZE for report in reports)
    results = [assembler.feed(report, 0.0) for report in reports]
    assert results[:-1] == [None] * (len(reports) - 1) and results[-1] == SWIPE
    with pytest.raises(EncryptedFormatError):
        assembler.feed(b"\x02\xff\xff" + bytes(61), 0.0)  # a length no swipe has


@pytest.mark.parametrize("expired", [True, False])
def test_a_swipe_cut_short_is_dropped_after_a_report_gap(expired: bool) -> None:
    """A report lost on the way: after `REPORT_GAP_S` of silence the fragment is dropped
    (by `expire`, or by the next report itself), so the next swipe is not glued onto it."""
    assembler = EnhancedSwipeAssembler()
    first, *rest = swipe_reports(SWIPE)
    assert rest and assembler.feed(first, 0.0) is None
    later = REPORT_GAP_S * 2
    if expired:
        assert assembler.expire(later) is None
    results = [assembler.feed(report, later) for report in [first, *rest]]
    assert results[-1] == SWIPE


def test_reports_closer_than_the_gap_still_make_one_swipe() -> None:
    assembler = EnhancedSwipeAssembler()
    step = REPORT_GAP_S * 0.9
    reports = swipe_reports(SWIPE)
    results = []
    for index, report in enumerate(reports):
        assert assembler.expire(index * step) is None
        results.append(assembler.feed(report, index * step))
    assert results[-1] == SWIPE


def test_after_a_lost_report_the_next_swipe_reads(rig: HidRig) -> None:
    first = swipe_reports(SWIPE)[0]
    pending = Background(rig.reader)
    wait_until(lambda: armed(rig.reader))
    rig.simulator.send([first])  # the rest of this swipe is lost
    time.sleep(REPORT_GAP_S * 1.5)
    rig.simulator.send(swipe_reports(SWIPE))
    assert isinstance(pending.join(), EncryptedCardRead)


@given(
    cuts=st.lists(st.integers(1, len(SWIPE) - 1), unique=True, max_size=12),
    padding=st.binary(max_size=MAX_REPORT_SIZE),
    repeat=st.integers(1, 3),
)
def test_the_assembler_returns_each_swipe_once_however_it_is_cut(
    cuts: list[int], padding: bytes, repeat: int
) -> None:
    """Reports of any sizes give back each swipe exactly when its last byte is in; what
    follows a swipe's end in its last report (padding) is dropped."""
    bounds = [0, *sorted(cuts), len(SWIPE)]
    reports = [SWIPE[start:end] for start, end in itertools.pairwise(bounds)]
    reports[-1] += padding
    assembler = EnhancedSwipeAssembler()
    for _ in range(repeat):
        results = [assembler.feed(report, 0.0) for report in reports]
        assert results == [None] * (len(reports) - 1) + [SWIPE]


@pytest.mark.parametrize("scheme", list(DukptScheme))
def test_each_read_swipes_the_next_deck_card_by_itself(scheme: DukptScheme) -> None:
    with SimulatedSecureMsrReader(scheme=scheme, **FAST) as reader:
        for card in MAGSTRIPE_DECK[:4]:
            assert_encrypted_read_of(reader.read_card(AMOUNT, CURRENCY, WAIT_LIMIT_S), card, scheme)
        status = reader.p2pe_status()
        assert status.scheme is scheme and status.last_ksn is not None
        assert dukpt.counter(status.last_ksn, scheme) == 4


def test_p2pe_status_warns_near_counter_exhaustion_and_the_head_stops_at_the_end() -> None:
    near_end = 0x1FF000  # nine one-bits: 12 usable counters follow it
    with SimulatedSecureMsrReader(first_counter=near_end, **FAST) as reader:
        fresh = reader.p2pe_status()
        assert fresh.last_ksn is None and fresh.counter_used is None
        assert not fresh.nearly_exhausted
        results = [reader.read_card(AMOUNT, CURRENCY, 0.5) for _ in range(3)]
        assert all(isinstance(result, EncryptedCardRead) for result in results)
        status = reader.p2pe_status()
        assert status.nearly_exhausted and status.counter_used is not None
        assert status.counter_used > 0.99
        while isinstance(result := reader.read_card(AMOUNT, CURRENCY, 0.3), EncryptedCardRead):
            last = result
        assert isinstance(result, TimedOut)  # the exhausted head reads no more cards
        assert dukpt.counter(last.card.ksn, TDES) == LAST_TDES_COUNTER
        assert dukpt.counter_exhaustion(last.card.ksn, TDES) == 1.0
        assert reader.p2pe_status().counter_used == 1.0


def test_a_swipes_file_is_read_in_order_then_nothing(tmp_path: Path) -> None:
    path = tmp_path / "swipes.hex"
    cards = MAGSTRIPE_DECK[:3]
    write_swipes(path, cards, TEST_BDK[TDES], TDES, ksn_at(TDES, 40))
    with SimulatedSecureMsrReader(swipes_file=str(path), **FAST) as reader:
        for card in cards:
            assert_encrypted_read_of(reader.read_card(AMOUNT, CURRENCY, WAIT_LIMIT_S), card, TDES)
        assert isinstance(reader.read_card(AMOUNT, CURRENCY, 0.2), TimedOut)


def test_the_driver_reading_a_swipes_file_never_imports_the_deck(tmp_path: Path) -> None:
    """The P2PE demo scans the daemon's memory for the deck's numbers: a simulator fed from
    a swipes file must not have imported the module that holds them."""
    path = tmp_path / "swipes.hex"
    card = MAGSTRIPE_DECK[0]
    write_swipes(path, [card], TEST_BDK[TDES], TDES, ksn_at(TDES, 1))
    script = (
        "import sys\n"
        "from drivers.registry import driver_class\n"
        "from drivers.card.reader import CardReader\n"
        "cls = driver_class(CardReader, 'simulated-secure-msr')\n"
        f"with cls(swipes_file={str(path)!r}, report_poll_s=0.02) as reader:\n"
        "    result = reader.read_card(100, 'EUR', 5.0)\n"
        "print(type(result).__name__, 'drivers.card.deck' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["EncryptedCardRead", "False"]


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"scheme": "des"}, "scheme"),
        ({"first_counter": 0}, "first_counter"),
        ({"first_counter": 1 << 21}, "first_counter"),  # beyond TDES's 21 counter bits
        ({"first_counter": 0x1FFFFF}, "first_counter"),  # past the last usable counter
        ({"swipe_delay_s": -1.0}, "swipe_delay_s"),
        ({"report_poll_s": 0.0}, "report_poll_s"),
    ],
)
def test_simulator_options_are_checked(options: dict[str, object], option: str) -> None:
    with pytest.raises(OptionError) as raised:
        SimulatedSecureMsrReader(**options)  # type: ignore[arg-type]
    assert raised.value.option == option
