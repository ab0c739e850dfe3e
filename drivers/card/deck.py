"""The simulated reader's deck: the brands' published test card numbers in every entry form.

Every number here is a public test number from the card brands' or acquirers' developer
documentation; none can pay for anything. Tests import `TEST_PANS` from here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.card import tlv
from drivers.card.brands import Brand
from drivers.card.carddata import EntryMode
from drivers.card.emv import (
    TAG_APPLICATION_CRYPTOGRAM,
    TAG_ATC,
    TAG_CARDHOLDER_NAME,
    TAG_EXPIRY,
    TAG_PAN,
    TAG_TRACK2_EQUIVALENT,
    build_pan_bcd,
    build_track2_equivalent,
)
from drivers.card.protocol import EmvData, MagstripeData
from drivers.card.tracks import build_track1, build_track2
from drivers.sensitive import SecretBytes, SecretStr

# (brand, public test card number): all test numbers, none real.
TEST_PANS: tuple[tuple[Brand, str], ...] = (
    (Brand.VISA, "4111111111111111"),  # Visa test card
    (Brand.VISA, "4012888888881881"),  # Visa test card
    (Brand.MASTERCARD, "5555555555554444"),  # Mastercard test card
    (Brand.MASTERCARD, "2223003122003222"),  # Mastercard 2-series test card
    (Brand.AMEX, "378282246310005"),  # Amex test card
    (Brand.DISCOVER, "6011111111111117"),  # Discover test card
    (Brand.JCB, "3530111333300000"),  # JCB test card
    (Brand.DINERS, "36227206271667"),  # Diners test card (14 digits)
    (Brand.DINERS, "3056930009020004"),  # Diners test card (16 digits)
    (Brand.UNIONPAY, "6200000000000005"),  # UnionPay test card
    (Brand.MAESTRO, "6759649826438453"),  # Maestro test card
)

DECK_EXPIRY = "3012"  # December 2030: not expired while this code is in use
DECK_EXPIRY_YYMMDD = bytes.fromhex("301231")
DECK_SERVICE_CODE = "201"  # international, chip card, normal authorization, no restrictions
DECK_NAME = "TEST/CARDHOLDER"
DECK_DISCRETIONARY = "1000000000"
CID_ARQC = bytes([0x80])
RESPONSE_TEMPLATE = 0x77
RECORD_TEMPLATE = 0x70
TAG_CID = 0x9F27


NO_TRACK = SecretStr("")
NO_TLV = SecretBytes(b"")


@dataclass(frozen=True)
class DeckCard:
    """One card the simulator can present, already in its wire form."""

    label: str
    entry_mode: EntryMode
    track1: SecretStr = NO_TRACK
    track2: SecretStr = NO_TRACK
    tlv: SecretBytes = NO_TLV

    def response(self) -> MagstripeData | EmvData:
        if self.entry_mode is EntryMode.MAGSTRIPE:
            return MagstripeData(self.track1, self.track2)
        return EmvData(self.entry_mode, SecretStr(self.tlv.reveal().hex().upper()))


def magstripe_card(label: str, pan: str) -> DeckCard:
    return DeckCard(
        label,
        EntryMode.MAGSTRIPE,
        track1=SecretStr(
            build_track1(pan, DECK_NAME, DECK_EXPIRY, DECK_SERVICE_CODE, DECK_DISCRETIONARY)
        ),
        track2=SecretStr(build_track2(pan, DECK_EXPIRY, DECK_SERVICE_CODE, DECK_DISCRETIONARY)),
    )


def emv_tlv(pan: str, atc: int = 1) -> bytes:
    """A GENERATE AC style response: template 77 holding a nested record template 70."""
    record = tlv.Tlv(
        RECORD_TEMPLATE,
        children=(
            tlv.Tlv(TAG_PAN, build_pan_bcd(pan)),
            tlv.Tlv(TAG_EXPIRY, DECK_EXPIRY_YYMMDD),
            tlv.Tlv(
                TAG_TRACK2_EQUIVALENT,
                build_track2_equivalent(pan, DECK_EXPIRY, DECK_SERVICE_CODE, DECK_DISCRETIONARY),
            ),
            tlv.Tlv(TAG_CARDHOLDER_NAME, DECK_NAME.encode("ascii")),
        ),
    )
    return tlv.encode(
        [
            tlv.Tlv(
                RESPONSE_TEMPLATE,
                children=(
                    tlv.Tlv(TAG_CID, CID_ARQC),
                    tlv.Tlv(TAG_ATC, atc.to_bytes(2, "big")),
                    tlv.Tlv(TAG_APPLICATION_CRYPTOGRAM, bytes(range(8))),
                    record,
                ),
            )
        ]
    )


def emv_card(label: str, pan: str, mode: EntryMode = EntryMode.CHIP) -> DeckCard:
    return DeckCard(label, mode, tlv=SecretBytes(emv_tlv(pan)))


def default_deck() -> tuple[DeckCard, ...]:
    """Each test number as a swipe, a chip read and a tap, brand by brand."""
    cards: list[DeckCard] = []
    for index, (brand, pan) in enumerate(TEST_PANS):
        label = f"{brand.value}-{index}"
        cards.append(magstripe_card(f"{label}-swipe", pan))
        cards.append(emv_card(f"{label}-chip", pan, EntryMode.CHIP))
        cards.append(emv_card(f"{label}-tap", pan, EntryMode.CONTACTLESS))
    return tuple(cards)
