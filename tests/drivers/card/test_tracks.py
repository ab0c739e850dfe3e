"""ISO/IEC 7813 tracks: reader-manual LRC vectors, parity, build/parse round trip, errors."""

from __future__ import annotations

import pytest

from drivers.card.carddata import EntryMode
from drivers.card.deck import TEST_PANS
from drivers.card.tracks import (
    TRACK1,
    TRACK2,
    build_track1,
    build_track2,
    parse_swipe,
    parse_track2,
    raw_codes,
    split_swipe,
    track_lrc,
)
from drivers.errors import (
    CardConsistencyError,
    LuhnError,
    TrackFormatError,
    TrackLrcError,
)
from tests.cards import SECOND_VISA_TEST_PAN, VISA_TEST_PAN
from tests.drivers.card.conftest import assert_no_secret

VISA = VISA_TEST_PAN
VISA_2 = SECOND_VISA_TEST_PAN


@pytest.mark.parametrize(
    ("text", "encoding", "lrc"),
    [
        ("%AT3?", TRACK1, "<"),  # MagTek manual, track 1
        (";0?", TRACK2, "4"),  # MagTek manual, track 2
        (";4111111111111111=25121010000000000000?", TRACK2, "8"),  # MagTek, test card
    ],
)
def test_magtek_lrc_vectors(text: str, encoding: object, lrc: str) -> None:
    assert track_lrc(text, encoding) == lrc  # type: ignore[arg-type]


def test_parity_is_odd_on_every_character_including_lrc() -> None:
    track = build_track2(VISA, "2512", "101", "0000000000000")
    for code in raw_codes(track, TRACK2):
        assert bin(code).count("1") % 2 == 1
        assert code < 1 << 5
    for code in raw_codes("%AT3?<", TRACK1):
        assert bin(code).count("1") % 2 == 1
        assert code < 1 << 7
    # The LRC's data bits are the XOR of the data bits before it.
    data = [code & 0x0F for code in raw_codes(track, TRACK2)]
    xor = 0
    for value in data[:-1]:
        xor ^= value
    assert xor == data[-1]


def test_magtek_track2_parses_with_its_lrc() -> None:
    track = parse_track2(";4111111111111111=25121010000000000000?8")
    assert track.lrc_present and track.lrc_ok
    assert track.pan.masked == "411111******1111"
    assert str(track.expiry) == "2025-12"
    assert track.service_code is not None and track.service_code.code == "101"
    assert len(track.discretionary) == 13


def test_lrc_mismatch_is_a_typed_problem() -> None:
    good = build_track2(VISA, "3012", "201")
    lrc = good[-1]
    bad = good[:-1] + ("0" if lrc != "0" else "1")
    card = parse_swipe(bad)
    assert [type(p) for p in card.problems] == [TrackLrcError]
    with pytest.raises(TrackLrcError) as info:
        card.raise_for_problems()
    assert_no_secret(str(info.value), VISA)


def test_both_tracks_and_cross_checks() -> None:
    t1 = build_track1(VISA, "TEST/CARD", "3012", "201", "123")
    t2 = build_track2(VISA, "3012", "201", "123")
    card = parse_swipe(t1 + t2)
    assert card.valid and card.entry_mode is EntryMode.MAGSTRIPE
    assert card.cardholder_name is not None and card.cardholder_name.reveal() == "TEST/CARD"
    assert split_swipe(t1 + t2) == (t1, t2, None)
    other = build_track2(VISA_2, "3101", "201")
    mixed = parse_swipe(t1 + other)
    assert {type(p) for p in mixed.problems} == {CardConsistencyError}
    assert len(mixed.problems) == 2


def test_track1_lrc_equal_to_track2_start_sentinel_splits_right() -> None:
    # Search for a track 1 whose LRC is ';' and make sure the split keeps it.
    candidates = (
        build_track1(VISA, f"TEST/CARD{letter}", "3012", "201", str(n))
        for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        for n in range(100)
    )
    t1 = next(t for t in candidates if t.endswith(";"))
    t2 = build_track2(VISA, "3012", "201")
    assert split_swipe(t1 + t2) == (t1, t2, None)
    assert split_swipe(t1) == (t1, None, None)


@pytest.mark.parametrize(
    "text",
    [
        "%B4111111111111111^TEST/CARD^3012201",  # no end sentinel
        "%A4111111111111111^TEST/CARD^3012201?",  # format code A
        "%B4111111111111111TEST/CARD3012201?",  # no separators
        "%B4111111111111111^X^3012201?",  # name too short
        "%B4111111111111111^TEST/CARD^3013201?",  # month 13
        "%B4111111111111111^TEST/CARD^30?",  # expiry/service code missing
        ";4111111111111111D3012201?",  # no '='
        ";41111111111=3012201?",  # 11-digit PAN
        ";4111111111111111=3012201?AB",  # junk after LRC
        ";4111111111111111=3012201ABC?",  # letters on track 2
        ";4111111111111111=3012201" + "0" * 20 + "?",  # longer than 40
        "4111111111111111=30122é",  # non-ASCII
        "",
        "hello",
    ],
)
def test_malformed_tracks_raise_typed_errors_without_data(text: str) -> None:
    with pytest.raises(TrackFormatError) as info:
        parse_swipe(text)
    assert_no_secret(str(info.value), VISA)
    assert_no_secret(repr(info.value), VISA)


def test_luhn_failure_is_reported_not_raised_by_the_parser() -> None:
    card = parse_swipe(build_track2("4111111111111112", "3012", "201"))
    assert isinstance(card.problems[0], LuhnError)


@pytest.mark.parametrize(("brand", "pan"), TEST_PANS, ids=[b.value for b, _ in TEST_PANS])
def test_every_brand_as_a_swipe(brand: object, pan: str) -> None:
    card = parse_swipe(
        build_track1(pan, "TEST/CARD", "3012", "201") + build_track2(pan, "3012", "201")
    )
    assert card.valid and card.brand is brand
    assert_no_secret(repr(card), pan)


def test_build_rejects_bad_fields() -> None:
    with pytest.raises(TrackFormatError):
        build_track1(VISA, "A", "3012", "201")
    with pytest.raises(TrackFormatError):
        build_track1(VISA, "TEST^CARD", "3012", "201")
    with pytest.raises(TrackFormatError):
        build_track2(VISA, "3012", "201", "12=3")
