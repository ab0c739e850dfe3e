"""Arm the lane's device(s), wait for the customer, and turn the result into a capture.

Outcomes the cashier deals with every day (cancelled, no card in time, unreadable card, a palm
nobody enrolled) and faults of a device all become refusals with a stable code here; so do the
terminal's acceptance rules (an expired card, a check digit that fails, an unknown brand when
the lane refuses those). With `card+palm` both devices are armed and the first one presented
wins; the other is cancelled. Refusal messages name error classes and codes, never card data.

In P2PE mode (`[payments] card_data = "p2pe"`) the reader returns `EncryptedCardRead`: the
expiry and brand rules still apply (on the reader's masked fields), the check digit cannot
(the terminal has no card number: the cloud's authorization checks it). A read whose kind does
not match the mode (clear data in P2PE mode, an encrypted block in clear mode) is refused as a
misconfigured reader, and never journaled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from drivers.card.brands import Brand
from drivers.card.carddata import CardData
from drivers.card.encrypted import EncryptedCardData
from drivers.card.reader import CardReader
from drivers.card.results import CardRead, CardRemoved, CardUnreadable, EncryptedCardRead
from drivers.errors import CardDataError, DeviceError, ExpiryError, LuhnError
from drivers.outcomes import Cancelled, TimedOut
from drivers.palm.identity import Matched, NoMatch
from drivers.palm.scanner import PalmScanner
from posd.capture import (
    CaptureParts,
    Payment,
    card_capture,
    encrypted_card_capture,
    palm_capture,
)
from posd.card_data import CLEAR, P2PE
from posd.daemon.refusals import (
    CANCELLED,
    CARD_EXPIRED,
    CARD_INVALID,
    CARD_UNREADABLE,
    DEVICE_UNAVAILABLE,
    NO_MATCH,
    READ_TIMEOUT,
    refuse,
)
from posd.errors import Refusal

# When both devices end without a capture, the refusal that tells the cashier most wins.
REFUSAL_RANK = (
    CARD_EXPIRED,
    CARD_INVALID,
    CARD_UNREADABLE,
    NO_MATCH,
    CANCELLED,
    READ_TIMEOUT,
    DEVICE_UNAVAILABLE,
)
# After one device captured, how long the other may take to acknowledge its cancel.
OTHER_DEVICE_STOP_S = 5.0


@dataclass(frozen=True)
class AcceptanceRules:
    refuse_unknown_brand: bool = False
    card_data: str = CLEAR
    p2pe_key_ref: str | None = None


def accept_card(card: CardData, rules: AcceptanceRules, today: date) -> None:
    """The terminal's own acceptance rules, on a card the driver already validated."""
    if card.pan.luhn_required and not card.pan.luhn_ok:
        raise refuse(CARD_INVALID, "the card number fails its check digit")
    accept_encrypted_card(card, rules, today)


def accept_encrypted_card(
    card: CardData | EncryptedCardData, rules: AcceptanceRules, today: date
) -> None:
    """The rules that need no card number (all of them but the check digit)."""
    if card.expiry is not None and card.expiry.expired(today):
        raise refuse(CARD_EXPIRED, "the card has expired")
    if rules.refuse_unknown_brand and card.brand is Brand.UNKNOWN:
        raise refuse(CARD_INVALID, "this lane does not accept cards of an unknown brand")


def _wrong_mode(rules: AcceptanceRules, got: str) -> Refusal:
    return refuse(
        DEVICE_UNAVAILABLE,
        f"the card reader sent {got} card data but [payments] card_data is "
        f"{rules.card_data!r}: the reader or the config is wrong (posd devices)",
    )


def _card_data_refusal(error: CardDataError) -> Refusal:
    if isinstance(error, LuhnError):
        return refuse(CARD_INVALID, "the card number fails its check digit")
    if isinstance(error, ExpiryError):
        return refuse(CARD_INVALID, "the card's expiry date is invalid")
    return refuse(CARD_INVALID, f"the card's data is invalid ({error.code})")


def _device_refusal(device: str, error: DeviceError) -> Refusal:
    return refuse(DEVICE_UNAVAILABLE, f"the {device} failed ({error.code})")


def read_card(
    reader: CardReader, payment: Payment, timeout: float, rules: AcceptanceRules, today: date
) -> CaptureParts:
    try:
        result = reader.read_card(payment.amount_minor, payment.currency, timeout=timeout)
    except CardDataError as error:
        raise _card_data_refusal(error) from None
    except DeviceError as error:
        raise _device_refusal("card reader", error) from None
    if isinstance(result, CardRead):
        if rules.card_data != CLEAR:
            raise _wrong_mode(rules, CLEAR)
        accept_card(result.card, rules, today)
        return card_capture(payment, result)
    if isinstance(result, EncryptedCardRead):
        if rules.card_data != P2PE or rules.p2pe_key_ref is None:
            raise _wrong_mode(rules, P2PE)
        accept_encrypted_card(result.card, rules, today)
        return encrypted_card_capture(payment, result, rules.p2pe_key_ref)
    if isinstance(result, CardRemoved | CardUnreadable):
        raise refuse(CARD_UNREADABLE, f"the card could not be read ({result.outcome.value})")
    if isinstance(result, Cancelled):
        raise refuse(CANCELLED, "the payment was cancelled")
    if isinstance(result, TimedOut):
        raise refuse(READ_TIMEOUT, "no card was presented in time")
    raise AssertionError(f"unhandled card reader outcome {result!r}")


def read_palm(scanner: PalmScanner, payment: Payment, timeout: float) -> CaptureParts:
    try:
        result = scanner.identify(timeout=timeout)
    except DeviceError as error:
        raise _device_refusal("palm scanner", error) from None
    if isinstance(result, Matched):
        return palm_capture(payment, result)
    if isinstance(result, NoMatch):
        raise refuse(NO_MATCH, "the palm matches no enrolled identity")
    if isinstance(result, Cancelled):
        raise refuse(CANCELLED, "the payment was cancelled")
    if isinstance(result, TimedOut):
        raise refuse(READ_TIMEOUT, "no palm was presented in time")
    raise AssertionError(f"unhandled palm scanner outcome {result!r}")


class _Race:
    """Both devices armed at once; the first capture wins and the other is cancelled."""

    def __init__(self, cancels: dict[str, Callable[[], None]]) -> None:
        self._cancels = cancels
        self._lock = threading.Lock()
        self.capture: CaptureParts | None = None
        self.refusals: list[Refusal] = []

    def run(self, name: str, read: Callable[[], CaptureParts]) -> None:
        try:
            parts = read()
        except Refusal as refusal:
            with self._lock:
                self.refusals.append(refusal)
            return
        with self._lock:
            if self.capture is not None:  # both presented at once: the first one counts
                return
            self.capture = parts
        for other, cancel in self._cancels.items():
            if other != name:
                cancel()


def read_either(
    reader: CardReader,
    scanner: PalmScanner,
    payment: Payment,
    timeout: float,
    rules: AcceptanceRules,
    today: date,
) -> CaptureParts:
    race = _Race({"card": reader.cancel, "palm": scanner.cancel})
    reads: dict[str, Callable[[], CaptureParts]] = {
        "card": lambda: read_card(reader, payment, timeout, rules, today),
        "palm": lambda: read_palm(scanner, payment, timeout),
    }
    threads = [
        threading.Thread(target=race.run, args=(name, read), name=f"read-{name}", daemon=True)
        for name, read in reads.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + OTHER_DEVICE_STOP_S)
    if race.capture is not None:
        return race.capture
    raise best_refusal(race.refusals)


def best_refusal(refusals: list[Refusal]) -> Refusal:
    if not refusals:
        return refuse(READ_TIMEOUT, "nothing was presented in time")
    return min(
        refusals,
        key=lambda r: REFUSAL_RANK.index(r.code) if r.code in REFUSAL_RANK else len(REFUSAL_RANK),
    )
