"""Luhn, PAN shape, masking (property-tested) and brand detection on public test numbers."""

from __future__ import annotations

import pickle
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card.brands import Brand, brand_of, length_valid_for_brand
from drivers.card.carddata import Expiry, Pan, ServiceCode
from drivers.card.deck import TEST_PANS
from drivers.errors import ExpiryError, LuhnError, PanFormatError, ServiceCodeError
from drivers.sensitive import SecretBytes, SecretStr
from tests.cards import MASTERCARD_TEST_PAN
from tests.drivers.card.conftest import assert_no_secret
from wire.masking import MASK_CHAR, MASK_KEEP_FIRST, MASK_KEEP_LAST, luhn_valid, mask_pan

BRAND_IDS = [f"{brand.value}-{len(pan)}" for brand, pan in TEST_PANS]


def test_luhn_public_vector() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("7992739871a")


@pytest.mark.parametrize(("brand", "pan"), TEST_PANS, ids=BRAND_IDS)
def test_public_test_numbers(brand: Brand, pan: str) -> None:
    card = Pan(pan)
    assert card.luhn_ok
    assert card.brand is brand
    assert length_valid_for_brand(pan)
    assert card.problems() == []
    assert card.masked == pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    assert (card.bin, card.last4) == (pan[:6], pan[-4:])


@pytest.mark.parametrize(
    ("prefix", "brand"),
    [
        ("2221", Brand.MASTERCARD),
        ("2720", Brand.MASTERCARD),
        ("2220", Brand.UNKNOWN),
        ("2721", Brand.UNKNOWN),
        ("51", Brand.MASTERCARD),
        ("55", Brand.MASTERCARD),
        ("34", Brand.AMEX),
        ("37", Brand.AMEX),
        ("6011", Brand.DISCOVER),
        ("644", Brand.DISCOVER),
        ("65", Brand.DISCOVER),
        ("3528", Brand.JCB),
        ("3589", Brand.JCB),
        ("3527", Brand.UNKNOWN),
        ("300", Brand.DINERS),
        ("305", Brand.DINERS),
        ("3095", Brand.DINERS),
        ("36", Brand.DINERS),
        ("38", Brand.DINERS),
        ("62", Brand.UNIONPAY),
        ("6759", Brand.MAESTRO),
        ("5018", Brand.MAESTRO),
        ("4", Brand.VISA),
        ("9", Brand.UNKNOWN),
    ],
)
def test_bin_ranges(prefix: str, brand: Brand) -> None:
    assert brand_of(prefix.ljust(16, "0")) is brand


def test_pan_shape_errors_do_not_echo_digits() -> None:
    for bad in ("41111111111", "41111111111111111111", "4111-1111-1111-1111"):
        with pytest.raises(PanFormatError) as info:
            Pan(bad)
        assert_no_secret(str(info.value), bad)


def test_luhn_and_brand_length_problems() -> None:
    problems = Pan("4111111111111112").problems()
    assert [type(p) for p in problems] == [LuhnError]
    assert isinstance(Pan("378282246310005" + "4").problems()[-1], PanFormatError)


def test_pan_never_shows_in_repr_str_format() -> None:
    pan = MASTERCARD_TEST_PAN
    card = Pan(pan)
    for text in (repr(card), str(card), f"{card}", f"{card!r}", repr([card])):
        assert_no_secret(text, pan)
    assert card.reveal() == pan
    assert card == Pan(pan)


def test_secret_containers_hide_and_refuse_pickle() -> None:
    secret = SecretStr("%B4111111111111111^TEST/CARD^3012?")
    assert "4111" not in repr(secret) + str(secret) + f"{secret}" + repr({"k": secret})
    assert repr(secret) == "SecretStr(<34 chars>)"
    assert secret == SecretStr(secret.reveal()) and secret != SecretStr("x")
    assert repr(SecretBytes(b"\x5a\x08")) == "SecretBytes(<2 bytes>)"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(AttributeError):
        secret._value = "changed"


@settings(max_examples=200)
@given(st.text(alphabet="0123456789", min_size=0, max_size=25))
def test_masking_never_shows_more_than_bin_and_last_four(digits: str) -> None:
    masked = mask_pan(digits)
    assert len(masked) == len(digits)
    clear = [i for i, c in enumerate(masked) if c != MASK_CHAR]
    assert len(clear) <= MASK_KEEP_FIRST + MASK_KEEP_LAST
    for index in clear:
        assert masked[index] == digits[index]
        assert index < MASK_KEEP_FIRST or index >= len(digits) - MASK_KEEP_LAST
    if len(digits) <= MASK_KEEP_FIRST + MASK_KEEP_LAST:
        # Short numbers: the last four at most, something always hidden beyond four digits.
        assert len(clear) <= MASK_KEEP_LAST


def test_expiry() -> None:
    expiry = Expiry.parse_yymm("2502")
    assert (expiry.year, expiry.month, str(expiry)) == (2025, 2, "2025-02")
    assert not expiry.expired(date(2025, 2, 28))
    assert expiry.expired(date(2025, 3, 1))
    assert expiry.yymm() == "2502"
    for bad in ("2513", "2500", "25A1", "251"):
        with pytest.raises(ExpiryError):
            Expiry.parse_yymm(bad)


def test_service_code() -> None:
    code = ServiceCode("201")
    assert code.chip_card
    assert code.describe() == "international, chip; authorization normal; no restrictions"
    assert not ServiceCode("101").chip_card
    for bad in ("20", "2011", "2a1"):
        with pytest.raises(ServiceCodeError):
            ServiceCode(bad)
