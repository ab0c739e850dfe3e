"""What a captured payment becomes: clear metadata that PCI DSS allows, and a sealed secret.

The one place where device results (card data, palm credentials) are split: the clear side
keeps at most BIN and last four of a card (PCI DSS 3.4.1) and never the credential; all the
rest (PAN, expiry, track and EMV data, cardholder name, the palm credential) goes into the
secret JSON that `Recorder` seals. Only the successful outcomes of a device (`CardRead`,
`EncryptedCardRead`, `Matched`) become payments; the others (cancelled, timed out...) never
reach this module. Nothing here logs or prints.

In P2PE mode the reader's encrypted read has the same clear metadata (plus `card_data:
"p2pe"`), and its secret holds the encrypted block (`wire.p2pe`) and the expiry: there is no
card number on this side to keep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from drivers.card.carddata import CardData
from drivers.card.encrypted import EncryptedCardData
from drivers.card.results import CardRead, EncryptedCardRead
from drivers.palm.identity import Matched
from posd.card_data import P2PE
from posd.errors import UsageError
from posd.journal.rows import MAX_AMOUNT_MINOR
from wire.p2pe import P2PE_FIELD, P2peBlock

CARD_PAYMENT = "card_payment"
PALM_PAYMENT = "palm_payment"
PALM_ENTRY_MODE = "palm"
BASIS_POINTS = 10_000
CURRENCY_CODE_LENGTH = 3


@dataclass(frozen=True)
class Payment:
    """The register's side of a payment: what is charged, and where."""

    amount_minor: int
    currency: str
    lane: str

    def __post_init__(self) -> None:
        if type(self.amount_minor) is not int or not 0 < self.amount_minor <= MAX_AMOUNT_MINOR:
            raise UsageError(
                f"amount must be an integer from 1 to {MAX_AMOUNT_MINOR} (minor units)"
            )
        if not (len(self.currency) == CURRENCY_CODE_LENGTH and self.currency.isascii()):
            raise UsageError("currency must be a three-letter ISO 4217 code")
        if not self.currency.isalpha() or not self.currency.isupper():
            raise UsageError("currency must be a three-letter ISO 4217 code")

    def meta(self) -> dict[str, Any]:
        return {"amount": self.amount_minor, "currency": self.currency, "lane": self.lane}


@dataclass(frozen=True)
class CaptureParts:
    kind: str
    meta: dict[str, Any]
    secret: bytes


def _card_meta(payment: Payment, card: CardData | EncryptedCardData) -> dict[str, Any]:
    """What a receipt and the register may see of a card, in either mode."""
    return {
        **payment.meta(),
        "entry_mode": card.entry_mode.value,
        "brand": card.brand.value,
        "bin": card.pan.bin,
        "last4": card.pan.last4,
        "masked_pan": card.pan.masked,
    }


def card_capture(payment: Payment, read: CardRead) -> CaptureParts:
    card = read.card
    meta = _card_meta(payment, card)
    secret: dict[str, Any] = {"pan": card.pan.reveal()}
    if card.expiry is not None:
        secret["expiry"] = card.expiry.yymm()
    if card.service_code is not None:
        secret["service_code"] = card.service_code.code
    for name in ("cardholder_name", "track1", "track2", "track3"):
        value = getattr(card, name)
        if value is not None:
            secret[name] = value.reveal()
    if card.tlv is not None:
        secret["tlv_hex"] = card.tlv.reveal().hex()
    return CaptureParts(CARD_PAYMENT, meta, json.dumps(secret).encode())


def encrypted_card_capture(payment: Payment, read: EncryptedCardRead, key_ref: str) -> CaptureParts:
    """A P2PE read: the encrypted block under `key_ref` (the BDK that can open it in AWS
    Payment Cryptography) and the expiry if the reader gave it; never a card number."""
    card = read.card
    meta = {**_card_meta(payment, card), "card_data": P2PE}
    block = P2peBlock(
        scheme=card.scheme,
        ksn=card.ksn,
        key_ref=key_ref,
        device_serial=card.device_serial,
        format=card.format,
        tracks=card.tracks,
    )
    secret: dict[str, Any] = {P2PE_FIELD: block.to_json()}
    if card.expiry is not None:
        secret["expiry"] = card.expiry.yymm()
    return CaptureParts(CARD_PAYMENT, meta, json.dumps(secret).encode())


def palm_capture(payment: Payment, match: Matched) -> CaptureParts:
    meta = {
        **payment.meta(),
        "entry_mode": PALM_ENTRY_MODE,
        "match_confidence_bp": round(match.confidence * BASIS_POINTS),
    }
    secret = {"palm_credential": match.credential.reveal()}
    return CaptureParts(PALM_PAYMENT, meta, json.dumps(secret).encode())
