"""ISO/IEC 7813 fields on tracks 1, 2, 3 and EMV tag 57: generated from their fields, parsed back.

Covers the country code after the separator of a PAN beginning 59, a separator standing for an
absent expiry or service code, track 3 after track 2, and tag 57 field faults as problems.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card import emv, tlv
from drivers.card.tlv import Tlv
from drivers.card.tracks import (
    TRACK3_READER_START,
    build_track1,
    build_track2,
    build_track3,
    parse_swipe,
    parse_track1,
    parse_track2,
)
from drivers.errors import (
    CountryCodeError,
    FieldAbsentError,
    LuhnError,
    ServiceCodeError,
    TrackFormatError,
    TrackLrcError,
)
from posd.cli.main import main
from tests.cards import VISA_TEST_PAN
from tests.drivers.card.conftest import assert_no_secret

VISA = VISA_TEST_PAN
DIGITS = "0123456789"
ISSUE_59_TRACK2 = ";593456789012345=3211010123?"  # the issue's vector: country code 321

pans = st.one_of(
    st.text(DIGITS, min_size=12, max_size=19),
    st.text(DIGITS, min_size=10, max_size=17).map(lambda rest: "59" + rest),
)
names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ /.", min_size=2, max_size=26)
expiries = st.none() | st.builds(
    lambda y, m: f"{y:02d}{m:02d}", st.integers(0, 99), st.integers(1, 12)
)
service_codes = st.none() | st.text(DIGITS, min_size=3, max_size=3)
country_codes = st.text(DIGITS, min_size=3, max_size=3)
discretionary = st.text(DIGITS, max_size=4)


def _absent_count(expiry: str | None, service: str | None) -> int:
    return (expiry is None) + (service is None)


@settings(max_examples=200)
@given(pans, names, expiries, service_codes, country_codes, discretionary)
def test_tracks_1_and_2_round_trip_every_field_branch(
    pan: str, name: str, expiry: str | None, service: str | None, cc: str, extra: str
) -> None:
    country = cc if pan.startswith("59") else None
    text1 = build_track1(pan, name, expiry, service, extra, country_code=country)
    text2 = build_track2(pan, expiry, service, extra, country_code=country)
    for track, text in ((parse_track1(text1), text1), (parse_track2(text2), text2)):
        assert track.pan.reveal() == pan
        assert (track.expiry.yymm() if track.expiry else None) == expiry
        assert (track.service_code.code if track.service_code else None) == service
        assert track.country_code == country
        assert track.discretionary.reveal() == extra
        assert track.lrc_present and track.lrc_ok
        assert track.raw.reveal() == text
        absent = [p for p in track.problems() if isinstance(p, FieldAbsentError)]
        assert len(absent) == _absent_count(expiry, service)
    name_field = parse_track1(text1).name
    assert name_field is not None and name_field.reveal() == name  # country code not in it
    bare = parse_track2(text2[1 : text2.index("?")])
    assert bare.pan.reveal() == pan and bare.country_code == country and not bare.lrc_present


@settings(max_examples=150)
@given(pans, expiries, service_codes, country_codes, discretionary)
def test_tag_57_round_trips_every_field_branch(
    pan: str, expiry: str | None, service: str | None, cc: str, extra: str
) -> None:
    country = cc if pan.startswith("59") else None
    value = emv.build_track2_equivalent(pan, expiry, service, extra, country_code=country)
    parsed = emv.parse_track2_equivalent(value)
    assert parsed.pan.reveal() == pan
    assert (parsed.expiry.yymm() if parsed.expiry else None) == expiry
    assert (parsed.service_code.code if parsed.service_code else None) == service
    assert parsed.country_code == country
    assert [type(p) for p in parsed.problems] == [FieldAbsentError] * _absent_count(expiry, service)


track3_data = st.text(alphabet="0123456789=", min_size=12, max_size=100)  # long: no chance hit


@settings(max_examples=100)
@given(track3_data, st.booleans(), st.booleans())
def test_track_3_after_track_2_is_kept_sealed(data: str, with_lrc: bool, reader_plus: bool) -> None:
    t1 = build_track1(VISA, "TEST/CARD", "3012", "201")
    t2 = build_track2(VISA, "3012", "201")
    t3 = build_track3(data, with_lrc=with_lrc)
    if reader_plus:
        t3 = TRACK3_READER_START + t3[1:]
    for swipe in (t1 + t2 + t3, t2 + t3):
        card = parse_swipe(swipe)
        assert card.valid, card.problems
        assert card.track3 is not None and card.track3.reveal() == t3
        assert card.expiry is not None and str(card.expiry) == "2030-12"
        assert_no_secret(repr(card) + str(card), data)


def test_track_3_lrc_mismatch_is_a_problem_and_junk_still_refused() -> None:
    t2 = build_track2(VISA, "3012", "201")
    t3 = build_track3("0112345")
    bad = t3[:-1] + ("0" if t3[-1] != "0" else "1")
    assert [type(p) for p in parse_swipe(t2 + bad).problems] == [TrackLrcError]
    with pytest.raises(TrackFormatError):
        parse_swipe(t2 + ";01AB?")  # letters are not track 3 characters


def test_issue_59_country_code_vector() -> None:
    card = parse_swipe(ISSUE_59_TRACK2)
    assert card.expiry is not None and str(card.expiry) == "2010-10"
    assert card.service_code is not None and card.service_code.code == "123"
    assert card.country_code == "321"
    assert [type(p) for p in card.problems] == [LuhnError]  # the vector's check digit is off
    track1 = parse_track1("%B593456789012345^321DOE/JOHN^1010123?")
    assert track1.name is not None and track1.name.reveal() == "DOE/JOHN"
    assert track1.country_code == "321" and str(track1.expiry) == "2010-10"


@pytest.mark.parametrize(
    ("text", "expiry", "service"),
    [
        (f";{VISA}==123?", None, "123"),
        (f";{VISA}=3012=?", "2030-12", None),
        (f";{VISA}===?", None, None),
        (f"%B{VISA}^TEST/CARD^^201?", None, "201"),
    ],
)
def test_absent_fields_are_problems_not_malformed(
    text: str, expiry: str | None, service: str | None
) -> None:
    card = parse_swipe(text)
    assert (str(card.expiry) if card.expiry else None) == expiry
    assert (card.service_code.code if card.service_code else None) == service
    assert {type(p) for p in card.problems} == {FieldAbsentError}
    assert len(card.problems) == (expiry is None) + (service is None)


def test_builders_insist_on_the_country_code_rule() -> None:
    with pytest.raises(CountryCodeError):
        build_track2("5934567890123450", "3012", "201")  # 59 without a country code
    with pytest.raises(CountryCodeError):
        build_track2(VISA, "3012", "201", country_code="826")  # not a 59 PAN
    with pytest.raises(TrackFormatError):
        parse_track2(";593456789012345=32A1010123?")  # malformed country code


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_decode_track_shows_country_code_expiry_and_service_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, result = _cli(capsys, "decode", "track", ISSUE_59_TRACK2, "--json")
    assert code == 1  # the issue's number fails Luhn
    assert (result["expiry"], result["service_code"], result["country_code"]) == (
        "2010-10",
        "123",
        "321",
    )
    code, result = _cli(capsys, "decode", "track", f";{VISA}==123?", "--json")
    assert code == 1 and result["expiry"] is None and result["service_code"] == "123"
    assert [p["code"] for p in result["problems"]] == ["field_absent"]


def test_decode_track_with_track_3(capsys: pytest.CaptureFixture[str]) -> None:
    swipe = build_track2(VISA, "3012", "201") + build_track3("01123456789")
    code, result = _cli(capsys, "decode", "track", swipe, "--json")
    assert code == 0
    assert result["tracks"] == [
        {"track": 2, "lrc": "ok", "discretionary_length": 0},
        {"track": 3, "lrc": "ok", "discretionary_length": 11},
    ]
    assert "01123456789" not in json.dumps(result)


def test_tag_57_with_non_digit_service_code_keeps_the_tree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad_57 = bytes.fromhex(f"{VISA}D30122A10F")  # service code nibbles '2A1'
    data = tlv.encode([Tlv(0x70, children=(Tlv(0x57, bad_57), Tlv(0x5F2D, b"en")))])
    card = emv.card_from_tlv(data)
    assert [type(p) for p in card.problems] == [ServiceCodeError]
    assert card.service_code is None and str(card.expiry) == "2030-12"
    code, result = _cli(capsys, "decode", "tlv", data.hex(), "--json")
    assert code == 1
    objects = result["objects"]
    assert [o["tag"] for o in objects] == ["70", "57", "5F2D"]
    assert [p["code"] for p in result["problems"]] == ["service_code_invalid"]
    assert objects[1]["value"].startswith("411111******1111 exp 2030-12 svc -")
    assert objects[2]["name"] == "Language Preference"
    assert_no_secret(json.dumps(result), VISA)


def test_unusable_57_beside_a_good_5a_is_a_problem(capsys: pytest.CaptureFixture[str]) -> None:
    data = tlv.encode([Tlv(0x5A, emv.build_pan_bcd(VISA)), Tlv(0x57, bytes.fromhex(VISA))])
    card = emv.card_from_tlv(data)
    assert card.pan.reveal() == VISA and [p.code for p in card.problems] == ["tlv_invalid"]
    code, result = _cli(capsys, "decode", "tlv", data.hex(), "--json")
    assert code == 1 and result["brand"] == "visa"
