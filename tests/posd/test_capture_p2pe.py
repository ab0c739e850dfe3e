"""P2PE mode: an encrypted read becomes a card payment with the same clear metadata and the
encrypted block, never a PAN, in its secret; the acceptance rules that can apply do."""

from __future__ import annotations

import json
from datetime import date

import pytest

from drivers.card.brands import Brand
from drivers.card.deck import TEST_PANS
from posd.capture import CARD_PAYMENT, Payment, encrypted_card_capture
from posd.daemon.reading import AcceptanceRules, accept_encrypted_card, read_card
from posd.errors import Refusal
from posd.redact import redact_text
from tests.fake_secure_reader import FakeSecureReader
from tests.p2pe_reads import encrypted_card, encrypted_read
from wire.p2pe import P2PE_FIELD, P2peBlock

PAYMENT = Payment(amount_minor=1999, currency="EUR", lane="lane-01")
KEY_REF = "alias/posd-bdk"
TODAY = date(2026, 12, 7)
CLEAR_META_KEYS = {"entry_mode", "brand", "bin", "last4", "masked_pan"}


@pytest.mark.parametrize(("brand", "pan"), TEST_PANS)
def test_encrypted_read_keeps_the_clear_keys_and_never_a_pan(brand: Brand, pan: str) -> None:
    read = encrypted_read(pan)
    parts = encrypted_card_capture(PAYMENT, read, KEY_REF)
    assert parts.kind == CARD_PAYMENT
    assert parts.meta["card_data"] == "p2pe"
    assert set(parts.meta) >= CLEAR_META_KEYS
    assert parts.meta["bin"] == pan[:6] and parts.meta["last4"] == pan[-4:]
    assert parts.meta["brand"] == read.card.brand.value
    clear = json.dumps(parts.meta)
    assert redact_text(clear) == clear
    assert pan not in clear and pan not in parts.secret.decode()
    secret = json.loads(parts.secret)
    assert set(secret) == {P2PE_FIELD, "expiry"}
    assert secret["expiry"] == "3012"
    block = P2peBlock.from_json(secret[P2PE_FIELD])
    assert block.key_ref == KEY_REF
    assert block.ksn == read.card.ksn and block.tracks == read.card.tracks
    assert block.device_serial == read.card.device_serial and block.format == read.card.format


def test_an_encrypted_read_without_expiry_has_none_in_its_secret() -> None:
    pan = TEST_PANS[0][1]
    secret = json.loads(encrypted_card_capture(PAYMENT, encrypted_read(pan, None), KEY_REF).secret)
    assert set(secret) == {P2PE_FIELD}


def test_an_expired_encrypted_card_is_refused() -> None:
    card = encrypted_card(TEST_PANS[0][1], expiry="2011")
    with pytest.raises(Refusal) as caught:
        accept_encrypted_card(card, AcceptanceRules(), TODAY)
    assert caught.value.code == "card_expired"


def test_an_unknown_brand_is_refused_when_the_lane_refuses_those() -> None:
    card = encrypted_card("9999990000000000")
    assert card.brand is Brand.UNKNOWN
    accept_encrypted_card(card, AcceptanceRules(), TODAY)
    with pytest.raises(Refusal) as caught:
        accept_encrypted_card(card, AcceptanceRules(refuse_unknown_brand=True), TODAY)
    assert caught.value.code == "card_invalid"


P2PE_RULES = AcceptanceRules(card_data="p2pe", p2pe_key_ref=KEY_REF)


def test_read_card_in_p2pe_mode_captures_the_encrypted_read() -> None:
    with FakeSecureReader() as reader:
        parts = read_card(reader, PAYMENT, 1.0, P2PE_RULES, TODAY)
    assert parts.meta["card_data"] == "p2pe"
    assert P2peBlock.from_json(json.loads(parts.secret)[P2PE_FIELD]).key_ref == KEY_REF


@pytest.mark.parametrize(
    ("rules", "clear"),
    [(AcceptanceRules(), False), (P2PE_RULES, True)],
    ids=["encrypted read in clear mode", "clear read in p2pe mode"],
)
def test_a_read_of_the_other_mode_is_refused(rules: AcceptanceRules, clear: bool) -> None:
    with FakeSecureReader(clear=clear) as reader, pytest.raises(Refusal) as caught:
        read_card(reader, PAYMENT, 1.0, rules, TODAY)
    assert caught.value.code == "device_unavailable"
    assert "card_data" in str(caught.value)
