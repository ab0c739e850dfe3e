"""Typed card data: the PAN, expiry, service code, and one card read with its problems.

Parsers (`tracks`, `emv`) build these; validation is split in two on purpose:
- structure errors (no separator, truncated TLV) are raised at once: there is nothing to show;
- content problems (Luhn, LRC, brand length, disagreeing sources) are collected in
  `CardData.problems` as typed, safe-to-print errors, so a technician's `posd decode` can list
  all of them, while the driver calls `raise_for_problems()` and refuses the read.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from drivers.card.brands import Brand, BrandMatch, brand_match
from drivers.errors import (
    CardDataError,
    ExpiryError,
    LuhnError,
    PanFormatError,
    ServiceCodeError,
)
from drivers.sensitive import SecretBytes, SecretStr
from wire.masking import (
    MASK_KEEP_FIRST,
    MASK_KEEP_LAST,
    PAN_MAX_DIGITS,
    PAN_MIN_DIGITS,
    luhn_valid,
    mask_pan,
)

CENTURY = 2000
SERVICE_CODE_DIGITS = 3


class EntryMode(StrEnum):
    MAGSTRIPE = "magstripe"
    CHIP = "chip"
    CONTACTLESS = "contactless"


class Pan:
    """A primary account number. `repr`/`str` show only the masked form."""

    __slots__ = ("_digits",)

    def __init__(self, digits: str) -> None:
        if not (digits.isascii() and digits.isdigit()):
            raise PanFormatError("card number must contain digits only")
        if not PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS:
            raise PanFormatError(
                f"card number must be {PAN_MIN_DIGITS}-{PAN_MAX_DIGITS} digits, got {len(digits)}"
            )
        self._digits = SecretStr(digits)

    def reveal(self) -> str:
        return self._digits.reveal()

    @property
    def masked(self) -> str:
        """At most BIN and last four in clear (PCI DSS 3.4.1)."""
        return mask_pan(self._digits.reveal())

    @property
    def bin(self) -> str:
        return self._digits.reveal()[:MASK_KEEP_FIRST]

    @property
    def last4(self) -> str:
        return self._digits.reveal()[-MASK_KEEP_LAST:]

    @property
    def length(self) -> int:
        return len(self._digits)

    @property
    def brand_match(self) -> BrandMatch:
        return brand_match(self._digits.reveal())

    @property
    def brand(self) -> Brand:
        return self.brand_match.brand

    @property
    def co_badged(self) -> tuple[Brand, ...]:
        """The other networks whose mark a co-badged card carries (empty for most cards)."""
        return self.brand_match.co_badged

    @property
    def luhn_required(self) -> bool:
        """False for the few brands whose numbers carry no Luhn check digit."""
        return self.brand_match.luhn

    @property
    def luhn_ok(self) -> bool:
        return luhn_valid(self._digits.reveal())

    def problems(self) -> list[CardDataError]:
        found: list[CardDataError] = []
        match = self.brand_match
        if match.luhn and not self.luhn_ok:
            found.append(LuhnError("card number fails the Luhn check"))
        if match.lengths is not None and self.length not in match.lengths:
            found.append(
                PanFormatError(f"{self.brand.value} does not issue {self.length}-digit numbers")
            )
        return found

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pan) and self._digits == other._digits

    def __hash__(self) -> int:
        return hash(self._digits)

    def __repr__(self) -> str:
        return f"Pan({self.masked})"

    __str__ = __repr__


@dataclass(frozen=True)
class Expiry:
    """Card expiry (year and month); the card is valid through the month's last day."""

    year: int
    month: int

    @classmethod
    def parse_yymm(cls, text: str) -> Expiry:
        if len(text) != 4 or not (text.isascii() and text.isdigit()):
            raise ExpiryError("expiry must be four digits YYMM")
        month = int(text[2:])
        if not 1 <= month <= 12:
            raise ExpiryError(f"expiry month {month:02d} is not 01-12")
        return cls(CENTURY + int(text[:2]), month)

    def yymm(self) -> str:
        return f"{self.year % 100:02d}{self.month:02d}"

    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def expired(self, today: date) -> bool:
        return today > self.last_day()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


_INTERCHANGE = {
    "1": "international",
    "2": "international, chip",
    "5": "national",
    "6": "national, chip",
    "7": "private",
    "9": "test",
}
_AUTHORIZATION = {"0": "normal", "2": "by issuer", "4": "by issuer unless bilateral agreement"}
_SERVICES = {
    "0": "no restrictions, PIN required",
    "1": "no restrictions",
    "2": "goods and services only",
    "3": "ATM only, PIN required",
    "4": "cash only",
    "5": "goods and services only, PIN required",
    "6": "no restrictions, PIN if PED present",
    "7": "goods and services only, PIN if PED present",
}


@dataclass(frozen=True)
class ServiceCode:
    """The three-digit magstripe service code (ISO/IEC 7813): where, how, what."""

    code: str

    def __post_init__(self) -> None:
        if len(self.code) != SERVICE_CODE_DIGITS or not (
            self.code.isascii() and self.code.isdigit()
        ):
            raise ServiceCodeError("service code must be three digits")

    @property
    def chip_card(self) -> bool:
        """First digit 2 or 6: the card has a chip, magstripe is a fallback."""
        return self.code[0] in "26"

    def describe(self) -> str:
        parts = (
            _INTERCHANGE.get(self.code[0], "reserved"),
            "authorization " + _AUTHORIZATION.get(self.code[1], "reserved"),
            _SERVICES.get(self.code[2], "reserved"),
        )
        return "; ".join(parts)


@dataclass(frozen=True)
class CardData:
    """One card read, whatever the entry mode. Sensitive parts stay in `Secret`s."""

    entry_mode: EntryMode
    pan: Pan
    expiry: Expiry | None = None
    service_code: ServiceCode | None = None
    cardholder_name: SecretStr | None = None
    country_code: str | None = None  # ISO/IEC 7813, PANs beginning 59 only
    track1: SecretStr | None = None
    track2: SecretStr | None = None
    track3: SecretStr | None = None  # kept for the sealed secret only, never parsed or shown
    tlv: SecretBytes | None = None
    problems: tuple[CardDataError, ...] = ()

    @property
    def brand(self) -> Brand:
        return self.pan.brand

    @property
    def valid(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise the first problem found, if any (what the driver does before returning)."""
        if self.problems:
            raise self.problems[0]

    def clear_metadata(self) -> dict[str, str]:
        """What may be stored in clear next to the encrypted payload (design section 8)."""
        return {
            "brand": self.brand.value,
            "masked_pan": self.pan.masked,
            "entry_mode": self.entry_mode.value,
        }
