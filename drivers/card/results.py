"""What `CardReader.read_card` returns: the card, or another ordinary end of the transaction.

A reader reports the card removed mid-read or a card it could not read (a bad swipe, a dirty
chip); like a cancel or nobody presenting a card, the cashier simply asks again, so these are
returned, not raised (the contract is in `drivers.base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from drivers.card.carddata import CardData
from drivers.card.encrypted import EncryptedCardData
from drivers.outcomes import Cancelled, Outcome, TimedOut


@dataclass(frozen=True)
class CardRead:
    """A card was read and its data validated (structure, track LRC, Luhn)."""

    card: CardData
    outcome: ClassVar[Outcome] = Outcome.CARD_READ


@dataclass(frozen=True)
class EncryptedCardRead:
    """An encrypting (P2PE) reader read a card: masked fields checked, the encrypted block
    kept whole for the cloud. No clear card number exists on this side."""

    card: EncryptedCardData
    outcome: ClassVar[Outcome] = Outcome.CARD_READ


@dataclass(frozen=True)
class CardRemoved:
    """The card was pulled out before the read completed."""

    outcome: ClassVar[Outcome] = Outcome.CARD_REMOVED


@dataclass(frozen=True)
class CardUnreadable:
    """The reader could not read the card (swipe or chip error); ask for it again."""

    outcome: ClassVar[Outcome] = Outcome.CARD_UNREADABLE


#: Every ordinary end of `CardReader.read_card` (faults raise instead, see `drivers.base`).
ReadResult = CardRead | EncryptedCardRead | CardRemoved | CardUnreadable | Cancelled | TimedOut
