"""ID TECH enhanced encrypted swipes: encode -> parse round trips on the deck's cards (TDES and
AES DUKPT), every documented check refused with our own errors, arbitrary bytes likewise."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card import dukpt
from drivers.card.carddata import EntryMode, Expiry
from drivers.card.deck import DECK_EXPIRY, TEST_PANS
from drivers.card.encrypted import READER_MASK_CHARS
from drivers.card.iso7813 import EXPIRY_DIGITS, needs_country_code
from drivers.card.secure_formats import (
    FIXED_HEADER_BYTES,
    FLAG_FIXED_KEY,
    FLAG_PIN_KEY,
    HEADER_BYTES,
    IDTECH_ENHANCED,
    SwipeKeys,
    encode_enhanced,
    frame,
    frame_bytes,
    mask_track,
    parse_enhanced,
)
from drivers.errors import (
    CardConsistencyError,
    CardDataError,
    EncryptedFormatError,
    PanFormatError,
    ProtocolError,
    ReaderEncryptionUnsupported,
    TrackFormatError,
)
from tests.cards import magstripe_tracks as deck_tracks
from wire.masking import mask_pan
from wire.p2pe import DukptScheme

SERIAL = "SIM0000042"
MASKED_STATUS_AT, ENCRYPTED_STATUS_AT = 5, 6  # offsets in the card data
ENCODE_TYPE_AT = 0
MONTHS = 12


def keys(scheme: DukptScheme, counter: int = 1) -> SwipeKeys:
    if scheme is DukptScheme.TDES_2KEY:
        base = bytes.fromhex("FFFF9876543210E00000")
        bdk = dukpt.TDES_TEST_BDK
    else:
        base = bytes.fromhex("123456789012345600000000")
        bdk = dukpt.AES_TEST_BDK
    ksn = (int.from_bytes(base, "big") | counter).to_bytes(len(base), "big")
    return SwipeKeys(bdk, ksn, scheme, SERIAL)


def card_data(swipe: bytes) -> bytearray:
    return bytearray(swipe[HEADER_BYTES:-3])


def assert_safe(error: Exception, pan: str) -> None:
    text = str(error)
    assert pan not in text and pan[6:-4] not in text


@pytest.mark.parametrize("scheme", list(DukptScheme))
@pytest.mark.parametrize("pan", [pan for _, pan in TEST_PANS])
def test_every_deck_card_round_trips(pan: str, scheme: DukptScheme) -> None:
    tracks = deck_tracks(pan)
    swipe_keys = keys(scheme, counter=7)
    swipe = encode_enhanced(tracks, swipe_keys)
    assert pan.encode() not in swipe
    read = parse_enhanced(swipe)
    assert read is not None
    assert read.pan.masked == mask_pan(pan)
    assert (read.ksn, read.scheme, read.device_serial) == (swipe_keys.ksn, scheme, SERIAL)
    assert (read.format, read.entry_mode, read.expiry) == (
        IDTECH_ENHANCED,
        EntryMode.MAGSTRIPE,
        None,
    )
    assert [track.track for track in read.tracks] == [1, 2]
    for encrypted in read.tracks:
        clear = dukpt.decrypt(swipe_keys.bdk, read.ksn, scheme, encrypted.ciphertext)
        assert clear[: encrypted.length].decode() == tracks[encrypted.track].reveal()


def test_expiry_is_read_when_the_reader_shows_it() -> None:
    pan = TEST_PANS[0][1]
    read = parse_enhanced(
        encode_enhanced(deck_tracks(pan), keys(DukptScheme.TDES_2KEY), clear_expiry=True)
    )
    assert read is not None and read.expiry == Expiry.parse_yymm(DECK_EXPIRY)


def masked_by_reader(mask: str, shown: str) -> bytes:
    """A track-2 swipe as a reader masking with `mask` sends it, `shown` where the expiry is."""
    pan = TEST_PANS[0][1]
    assert not needs_country_code(pan)
    track2 = deck_tracks(pan)[2]
    ours = mask_track(track2.reveal())
    expiry_at = ours.index("=") + 1
    theirs = ours.replace("*", mask)
    theirs = theirs[:expiry_at] + shown + theirs[expiry_at + len(shown) :]
    data = bytes(card_data(encode_enhanced({2: track2}, keys(DukptScheme.TDES_2KEY))))
    assert data.count(ours.encode()) == 1
    return frame(data.replace(ours.encode(), theirs.encode()))


@pytest.mark.parametrize("mask", sorted(READER_MASK_CHARS))
def test_an_expiry_the_reader_masks_is_not_shown(mask: str) -> None:
    """A reader masking with zeros shows `0000` where the expiry is: no expiry, no error."""
    read = parse_enhanced(masked_by_reader(mask, mask * EXPIRY_DIGITS))
    assert read is not None and read.expiry is None
    assert read.pan.masked == mask_pan(TEST_PANS[0][1])


@given(
    mask=st.sampled_from(sorted(READER_MASK_CHARS)),
    shown=st.text(alphabet="0123456789" + "".join(READER_MASK_CHARS), min_size=4, max_size=4),
)
def test_a_shown_expiry_is_read_only_when_it_is_a_yymm(mask: str, shown: str) -> None:
    read = parse_enhanced(masked_by_reader(mask, shown))
    valid = shown.isdigit() and 1 <= int(shown[2:]) <= MONTHS
    assert read is not None
    assert read.expiry == (Expiry.parse_yymm(shown) if valid else None)


def test_masking_keeps_the_layout_and_hides_the_rest() -> None:
    pan = TEST_PANS[0][1]
    track2 = deck_tracks(pan)[2].reveal()
    masked = mask_track(track2)
    assert len(masked) == len(track2)
    assert masked.startswith(";" + mask_pan(pan) + "=")
    assert set(masked[len(pan) + 2 :]) == {"*", "?"}
    track1 = mask_track(deck_tracks(pan)[1].reveal(), clear_expiry=True)
    assert track1.startswith("%B" + mask_pan(pan) + "^TEST/CARDHOLDER^" + DECK_EXPIRY + "*")


def test_a_track_2_only_swipe_with_null_hashes_parses() -> None:
    pan = TEST_PANS[2][1]
    swipe = encode_enhanced({2: deck_tracks(pan)[2]}, keys(DukptScheme.AES_128), null_hashes=True)
    read = parse_enhanced(swipe)
    assert read is not None and [t.track for t in read.tracks] == [2]
    assert read.pan.masked == mask_pan(pan)


def test_a_swipe_the_reader_could_not_decode_is_none() -> None:
    assert parse_enhanced(encode_enhanced({}, keys(DukptScheme.TDES_2KEY))) is None


def test_frame_bytes_reads_the_length_field() -> None:
    swipe = encode_enhanced(deck_tracks(TEST_PANS[0][1]), keys(DukptScheme.TDES_2KEY))
    assert frame_bytes(swipe[:2]) is None
    assert frame_bytes(swipe[:HEADER_BYTES]) == len(swipe)
    with pytest.raises(EncryptedFormatError):
        frame_bytes(b"\x00\x01")


def _swipe() -> bytes:
    return encode_enhanced(deck_tracks(TEST_PANS[0][1]), keys(DukptScheme.TDES_2KEY))


def _with_byte(swipe: bytes, index: int, value: int) -> bytes:
    changed = bytearray(swipe)
    changed[index] = value
    return bytes(changed)


def _set_in_data(swipe: bytes, index: int, bits: int) -> bytes:
    data = card_data(swipe)
    data[index] |= bits
    return frame(bytes(data))


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda s: _with_byte(s, 0, 0x01), EncryptedFormatError),  # no STX
        (lambda s: _with_byte(s, -1, 0x04), EncryptedFormatError),  # no ETX
        (lambda s: _with_byte(s, -3, s[-3] ^ 1), EncryptedFormatError),  # LRC
        (lambda s: _with_byte(s, -2, (s[-2] + 1) % 256), EncryptedFormatError),  # checksum
        (lambda s: s[:-1], EncryptedFormatError),  # cut short
        (lambda s: s[:40], EncryptedFormatError),
        (lambda s: frame(bytes(card_data(s))[:-1]), EncryptedFormatError),  # KSN cut
        (lambda s: frame(bytes(card_data(s)) + b"\x00"), EncryptedFormatError),  # extra byte
        (lambda s: _set_in_data(s, ENCODE_TYPE_AT, 0x01), TrackFormatError),  # AAMVA card
        (lambda s: frame(bytes([0x00]) + bytes(card_data(s)[1:])), EncryptedFormatError),
        (lambda s: _set_in_data(s, MASKED_STATUS_AT, FLAG_PIN_KEY), ReaderEncryptionUnsupported),
        (lambda s: _set_in_data(s, MASKED_STATUS_AT, FLAG_FIXED_KEY), ReaderEncryptionUnsupported),
    ],
)
def test_broken_swipes_are_refused(
    mangle: Callable[[bytes], bytes], error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        parse_enhanced(mangle(_swipe()))
    assert_safe(raised.value, TEST_PANS[0][1])


def test_a_masked_field_with_the_pan_in_clear_is_refused() -> None:
    pan = TEST_PANS[0][1]
    swipe = encode_enhanced(deck_tracks(pan), keys(DukptScheme.TDES_2KEY))
    masked = mask_track(deck_tracks(pan)[2].reveal()).encode()
    clear = (";" + pan + "=").encode()
    leaked = swipe.replace(masked[: len(clear)], clear)
    assert leaked != swipe
    with pytest.raises(PanFormatError) as raised:
        parse_enhanced(frame(bytes(card_data(leaked))))
    assert_safe(raised.value, pan)


def test_masked_tracks_of_two_cards_are_refused() -> None:
    first, second = TEST_PANS[0][1], TEST_PANS[1][1]
    tracks = {1: deck_tracks(first)[1], 2: deck_tracks(second)[2]}
    with pytest.raises(CardConsistencyError):
        parse_enhanced(encode_enhanced(tracks, keys(DukptScheme.TDES_2KEY)))


def test_a_swipe_without_encrypted_tracks_is_refused() -> None:
    data = card_data(_swipe())
    data[ENCRYPTED_STATUS_AT] = 0  # claims nothing encrypted, no KSN
    header_and_masked = FIXED_HEADER_BYTES + data[2] + data[3]
    serial_at = len(data) - 10 - len(keys(DukptScheme.TDES_2KEY).ksn)
    stripped = bytes(data[:header_and_masked]) + bytes(data[serial_at : serial_at + 10])
    with pytest.raises(ReaderEncryptionUnsupported):
        parse_enhanced(frame(stripped))


@settings(max_examples=60, deadline=None)
@given(
    pan=st.sampled_from([pan for _, pan in TEST_PANS]),
    scheme=st.sampled_from(list(DukptScheme)),
    counter=st.sampled_from([1, 2, 0x15, 0x0FF800, 0x100000]),
    which=st.sampled_from([(1, 2), (1,), (2,)]),
    clear_expiry=st.booleans(),
    null_hashes=st.booleans(),
)
def test_encode_parse_round_trip(
    pan: str,
    scheme: DukptScheme,
    counter: int,
    which: tuple[int, ...],
    clear_expiry: bool,
    null_hashes: bool,
) -> None:
    tracks = {number: deck_tracks(pan)[number] for number in which}
    swipe_keys = keys(scheme, counter)
    read = parse_enhanced(
        encode_enhanced(tracks, swipe_keys, clear_expiry=clear_expiry, null_hashes=null_hashes)
    )
    assert read is not None
    assert read.pan.masked == mask_pan(pan) and read.ksn == swipe_keys.ksn
    assert (read.expiry is not None) == clear_expiry
    for encrypted in read.tracks:
        clear = dukpt.decrypt(swipe_keys.bdk, swipe_keys.ksn, scheme, encrypted.ciphertext)
        assert clear[: encrypted.length].decode() == tracks[encrypted.track].reveal()


VALID = _swipe()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid swipe's card data with bytes changed, cut or added, framed with good checks:
    the parser's field logic, not only its frame checks, meets it."""
    data = card_data(VALID)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return frame(bytes(data[:cut]) + draw(st.binary(max_size=8)))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300) | mutated())
def test_arbitrary_bytes_give_a_read_or_our_errors(raw: bytes) -> None:
    try:
        parse_enhanced(raw)
    except (ProtocolError, CardDataError) as error:
        assert_safe(error, TEST_PANS[0][1])
