"""Device results become clear metadata (PCI-allowed only) and a sealed secret."""

from __future__ import annotations

import json

import pytest

from drivers.card.carddata import CardData
from drivers.card.deck import TEST_PANS, default_deck
from drivers.card.protocol import EmvData, MagstripeData
from drivers.card.results import CardRead
from drivers.card.simulated_reader import SimulatedCardReader
from drivers.palm.identity import Matched, PalmCredential
from posd.capture import CARD_PAYMENT, PALM_PAYMENT, Payment, card_capture, palm_capture
from posd.errors import UsageError
from posd.journal.rows import MAX_AMOUNT_MINOR
from posd.redact import redact_text

PAYMENT = Payment(amount_minor=1999, currency="EUR", lane="lane-01")


@pytest.fixture(scope="module")
def cards() -> list[CardData]:
    """Every card of the simulator's deck, read through the real serial driver over a pty."""
    with SimulatedCardReader() as reader:
        reads = [reader.read_card(100, "EUR", timeout=5) for _ in range(len(default_deck()))]
    assert all(isinstance(read, CardRead) for read in reads)
    return [read.card for read in reads if isinstance(read, CardRead)]


def test_card_capture_keeps_only_bin_and_last_four_in_clear(cards) -> None:
    pans = {pan for _, pan in TEST_PANS}
    assert {card.pan.reveal() for card in cards} <= pans
    for card in cards:
        parts = card_capture(PAYMENT, CardRead(card))
        assert parts.kind == CARD_PAYMENT
        clear = json.dumps(parts.meta)
        pan = card.pan.reveal()
        assert pan not in clear
        assert redact_text(clear) == clear  # nothing card-shaped at all
        assert parts.meta["bin"] == pan[:6] and parts.meta["last4"] == pan[-4:]
        assert parts.meta["amount"] == 1999 and parts.meta["entry_mode"] == card.entry_mode.value
        secret = json.loads(parts.secret)
        assert secret["pan"] == pan
        if card.expiry is None:
            assert "expiry" not in secret
        else:
            assert secret["expiry"] == card.expiry.yymm()


def test_every_entry_mode_keeps_its_raw_data_in_the_secret(cards) -> None:
    modes = {card.entry_mode.value for card in cards}
    assert modes == {"magstripe", "chip", "contactless"}
    for card in cards:
        secret = json.loads(card_capture(PAYMENT, CardRead(card)).secret)
        if card.entry_mode.value == "magstripe":
            assert secret["track2"]
        else:
            assert bytes.fromhex(secret["tlv_hex"])


def test_palm_capture_never_puts_the_credential_in_clear() -> None:
    token = "tok-badge-000042"
    parts = palm_capture(PAYMENT, Matched(PalmCredential(token), 0.9876))
    assert parts.kind == PALM_PAYMENT
    assert token not in json.dumps(parts.meta)
    assert parts.meta["match_confidence_bp"] == 9876
    assert json.loads(parts.secret) == {"palm_credential": token}


def test_deck_wire_forms_cover_magstripe_and_emv() -> None:
    kinds = {type(card.response()) for card in default_deck()}
    assert kinds == {MagstripeData, EmvData}


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        (0, "EUR"),
        (-5, "EUR"),
        (MAX_AMOUNT_MINOR + 1, "EUR"),
        (2**62, "EUR"),
        (100, "eur"),
        (100, "EURO"),
        (100, "E1R"),
    ],
)
def test_payment_refuses_amounts_and_currencies_out_of_bounds(amount: int, currency: str) -> None:
    with pytest.raises(UsageError, match=r"amount|currency"):
        Payment(amount, currency, "lane-1")


def test_payment_accepts_the_largest_amount() -> None:
    assert Payment(MAX_AMOUNT_MINOR, "JPY", "lane-1").meta()["amount"] == MAX_AMOUNT_MINOR
