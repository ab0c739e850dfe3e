"""What a captured payment becomes: clear metadata that PCI DSS allows, and a sealed secret.

The one place where device results (card data, palm credentials) are split: the clear side
keeps at most BIN and last four of a card (PCI DSS 3.4.1) and never the credential; all the
rest (PAN, expiry, track and EMV data, cardholder name, the palm credential) goes into the
secret JSON that `Recorder` seals. Nothing here logs or prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from drivers.card.carddata import CardData
from drivers.palm.identity import Matched

CARD_PAYMENT = "card_payment"
PALM_PAYMENT = "palm_payment"
PALM_ENTRY_MODE = "palm"
BASIS_POINTS = 10_000


@dataclass(frozen=True)
class Payment:
    """The register's side of a payment: what is charged, and where."""

    amount_minor: int
    currency: str
    lane: str

    def meta(self) -> dict[str, Any]:
        return {"amount": self.amount_minor, "currency": self.currency, "lane": self.lane}


@dataclass(frozen=True)
class CaptureParts:
    kind: str
    meta: dict[str, Any]
    secret: bytes


def card_capture(payment: Payment, card: CardData) -> CaptureParts:
    meta = {
        **payment.meta(),
        "entry_mode": card.entry_mode.value,
        "brand": card.brand.value,
        "bin": card.pan.bin,
        "last4": card.pan.last4,
        "masked_pan": card.pan.masked,
    }
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


def palm_capture(payment: Payment, match: Matched) -> CaptureParts:
    meta = {
        **payment.meta(),
        "entry_mode": PALM_ENTRY_MODE,
        "match_confidence_bp": round(match.confidence * BASIS_POINTS),
    }
    secret = {"palm_credential": match.credential.reveal()}
    return CaptureParts(PALM_PAYMENT, meta, json.dumps(secret).encode())
