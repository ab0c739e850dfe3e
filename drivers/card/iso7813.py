"""The ISO/IEC 7813 fields after the PAN's field separator, shared by tracks and EMV tag 57.

    [country code] <expiry YYMM | FS> <service code | FS> <discretionary data>

- A PAN beginning with 59 is followed by a three-digit country code (ISO 3166-1 numeric).
  On track 1 it starts the name field instead; the caller passes `with_country_code=False`.
- A field separator in place of the expiry or the service code marks it absent: the data is
  well formed, the absence is a `FieldAbsentError` problem.
- Malformed fields (letters, month 13, truncation) are `ExpiryError`, `ServiceCodeError` or
  `CountryCodeError` problems: the track parser refuses them, the EMV parser reports them.
Messages name the field and where it came from, never its content.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.card.carddata import Expiry, ServiceCode
from drivers.errors import (
    CardDataError,
    CountryCodeError,
    ExpiryError,
    FieldAbsentError,
    ServiceCodeError,
)

COUNTRY_CODE_PAN_PREFIX = "59"
COUNTRY_CODE_DIGITS = 3
EXPIRY_DIGITS = 4
SERVICE_CODE_DIGITS = 3


def needs_country_code(pan: str) -> bool:
    """ISO/IEC 7813: a country code follows the separator when the PAN begins with 59."""
    return pan.startswith(COUNTRY_CODE_PAN_PREFIX)


def valid_country_code(text: str) -> bool:
    return len(text) == COUNTRY_CODE_DIGITS and text.isascii() and text.isdigit()


@dataclass(frozen=True, repr=False)
class Iso7813Fields:
    country_code: str | None
    expiry: Expiry | None
    service_code: ServiceCode | None
    discretionary: str
    problems: tuple[CardDataError, ...]

    @property
    def malformed(self) -> tuple[CardDataError, ...]:
        """The problems that are not a declared absence."""
        return tuple(p for p in self.problems if not isinstance(p, FieldAbsentError))


def parse_fields(rest: str, separator: str, with_country_code: bool, where: str) -> Iso7813Fields:
    """Parse what follows the PAN's separator. Never raises: every fault is a problem."""
    problems: list[CardDataError] = []
    country: str | None = None
    pos = 0
    if with_country_code:
        country = rest[:COUNTRY_CODE_DIGITS]
        if not valid_country_code(country):
            problems.append(CountryCodeError(f"{where}: country code must be three digits"))
            country = None
        pos = COUNTRY_CODE_DIGITS
    expiry: Expiry | None = None
    if rest[pos : pos + 1] == separator:
        problems.append(FieldAbsentError(f"{where}: expiry absent (field separator)"))
        pos += 1
    else:
        try:
            if len(rest) < pos + EXPIRY_DIGITS:
                raise ExpiryError("expiry missing or truncated")
            expiry = Expiry.parse_yymm(rest[pos : pos + EXPIRY_DIGITS])
        except ExpiryError as error:
            problems.append(ExpiryError(f"{where}: {error}"))
        pos += EXPIRY_DIGITS
    service: ServiceCode | None = None
    if rest[pos : pos + 1] == separator:
        problems.append(FieldAbsentError(f"{where}: service code absent (field separator)"))
        pos += 1
    else:
        try:
            if len(rest) < pos + SERVICE_CODE_DIGITS:
                raise ServiceCodeError("service code missing or truncated")
            service = ServiceCode(rest[pos : pos + SERVICE_CODE_DIGITS])
        except ServiceCodeError as error:
            problems.append(ServiceCodeError(f"{where}: {error}"))
        pos += SERVICE_CODE_DIGITS
    return Iso7813Fields(country, expiry, service, rest[pos:], tuple(problems))


def format_fields(
    separator: str,
    expiry_yymm: str | None,
    service_code: str | None,
    discretionary: str = "",
    country_code: str | None = None,
) -> str:
    """The inverse of `parse_fields` (None writes the separator for an absent field)."""
    return "".join(
        (
            country_code or "",
            separator if expiry_yymm is None else expiry_yymm,
            separator if service_code is None else service_code,
            discretionary,
        )
    )


def check_country_code(pan: str, country_code: str | None, where: str) -> None:
    """For builders: a country code exactly when the PAN needs one. Raises `CountryCodeError`."""
    if needs_country_code(pan) != (country_code is not None):
        raise CountryCodeError(
            f"{where}: a country code is required for, and only for, a PAN beginning "
            f"{COUNTRY_CODE_PAN_PREFIX}"
        )
    if country_code is not None and not valid_country_code(country_code):
        raise CountryCodeError(f"{where}: country code must be three digits")
