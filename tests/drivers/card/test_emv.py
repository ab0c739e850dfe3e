"""EMV card data from TLV: PAN/expiry/service code extraction, cross-checks, safe rendering."""

from __future__ import annotations

import pytest

from drivers.card import emv, tlv
from drivers.card.carddata import EntryMode
from drivers.card.deck import TEST_PANS, emv_tlv
from drivers.card.tlv import Tlv
from drivers.errors import CardConsistencyError, LuhnError, TlvError
from tests.cards import AMEX_TEST_PAN, VISA_TEST_PAN
from tests.drivers.card.conftest import assert_no_secret

VISA = VISA_TEST_PAN
AMEX = AMEX_TEST_PAN  # odd length: BCD padding


@pytest.mark.parametrize(("brand", "pan"), TEST_PANS, ids=[b.value for b, _ in TEST_PANS])
def test_deck_tlv_of_every_brand(brand: object, pan: str) -> None:
    card = emv.card_from_tlv(emv_tlv(pan), EntryMode.CONTACTLESS)
    assert card.valid
    assert card.brand is brand
    assert card.pan.reveal() == pan
    assert str(card.expiry) == "2030-12"
    assert card.service_code is not None and card.service_code.code == "201"
    assert card.entry_mode is EntryMode.CONTACTLESS
    assert_no_secret(repr(card), pan)


def test_track2_equivalent_round_trip_with_padding() -> None:
    value = emv.build_track2_equivalent(AMEX, "3012", "201", "1234")  # odd digit count
    assert value[-1] & 0x0F == 0x0F
    parsed = emv.parse_track2_equivalent(value)
    assert parsed.pan.reveal() == AMEX
    assert parsed.expiry is not None and parsed.expiry.yymm() == "3012"
    assert parsed.service_code is not None and parsed.service_code.code == "201"


def test_pan_from_57_when_5a_is_absent() -> None:
    data = tlv.encode([Tlv(0x57, emv.build_track2_equivalent(VISA, "3012", "201"))])
    card = emv.card_from_tlv(data)
    assert card.pan.reveal() == VISA and card.valid


def test_mismatched_5a_and_57_is_a_problem() -> None:
    data = tlv.encode(
        [
            Tlv(0x5A, emv.build_pan_bcd(VISA)),
            Tlv(0x57, emv.build_track2_equivalent("4012888888881881", "3012", "201")),
            Tlv(0x5F24, bytes.fromhex("311231")),
        ]
    )
    problems = emv.card_from_tlv(data).problems
    assert [type(p) for p in problems] == [CardConsistencyError, CardConsistencyError]


def test_luhn_failure_in_5a() -> None:
    data = tlv.encode([Tlv(0x5A, emv.build_pan_bcd("4111111111111112"))])
    assert isinstance(emv.card_from_tlv(data).problems[0], LuhnError)


@pytest.mark.parametrize(
    "objects",
    [
        [Tlv(0x9F02, bytes(6))],  # no PAN at all
        [Tlv(0x5A, bytes.fromhex("4111"))],  # too short
        [Tlv(0x57, bytes.fromhex("4111111111111111"))],  # no separator
        [Tlv(0x5A, emv.build_pan_bcd(VISA)), Tlv(0x5F24, bytes.fromhex("3012"))],  # 2-byte date
    ],
)
def test_unusable_emv_data_raises_tlv_error(objects: list[Tlv]) -> None:
    with pytest.raises(TlvError) as info:
        emv.card_from_tlv(tlv.encode(objects))
    assert_no_secret(str(info.value), VISA)


def test_describe_value_hides_sensitive_tags() -> None:
    objects = tlv.parse(emv_tlv(VISA))
    rendered = {tlv.tag_hex(o.tag): emv.describe_value(o) for _, o in tlv.walk(objects)}
    assert rendered["5A"] == "411111******1111"
    assert rendered["57"].startswith("411111******1111 exp 2030-12 svc 201")
    assert rendered["5F20"] == "<hidden, 15 bytes>"
    assert rendered["9F36"] == "0001"
    assert rendered["77"] == "template, 4 objects"
    for text in rendered.values():
        assert_no_secret(text, VISA)
    assert emv.tag_info(0x9F02).name == "Amount, Authorised (Numeric)"
    assert emv.tag_info(0xDF01) is emv.UNKNOWN_TAG
