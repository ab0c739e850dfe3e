"""Card brand from the leading digits (BIN/IIN ranges) and the lengths each brand issues.

Ranges are the publicly documented IIN ranges. When two ranges match, the one with the longer
prefix wins (Maestro's 6759 beats nothing, Discover's 6011 beats UnionPay-style 6x guesses...).
The brand is routing metadata only; an unknown brand is not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Brand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    JCB = "jcb"
    DINERS = "diners"
    UNIONPAY = "unionpay"
    MAESTRO = "maestro"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class _Range:
    brand: Brand
    low: int
    high: int
    prefix_len: int
    lengths: frozenset[int]


def _lengths(low: int, high: int) -> frozenset[int]:
    return frozenset(range(low, high + 1))


_VISA_LENGTHS = frozenset({13, 16, 19})
_SIXTEEN = frozenset({16})
_SIXTEEN_TO_19 = _lengths(16, 19)
_DINERS_LENGTHS = _lengths(14, 19)
_MAESTRO_LENGTHS = _lengths(12, 19)

_RANGES: tuple[_Range, ...] = (
    _Range(Brand.VISA, 4, 4, 1, _VISA_LENGTHS),
    _Range(Brand.MASTERCARD, 51, 55, 2, _SIXTEEN),
    _Range(Brand.MASTERCARD, 2221, 2720, 4, _SIXTEEN),
    _Range(Brand.AMEX, 34, 34, 2, frozenset({15})),
    _Range(Brand.AMEX, 37, 37, 2, frozenset({15})),
    _Range(Brand.DISCOVER, 6011, 6011, 4, _SIXTEEN_TO_19),
    _Range(Brand.DISCOVER, 644, 649, 3, _SIXTEEN_TO_19),
    _Range(Brand.DISCOVER, 65, 65, 2, _SIXTEEN_TO_19),
    _Range(Brand.JCB, 3528, 3589, 4, _SIXTEEN_TO_19),
    _Range(Brand.DINERS, 300, 305, 3, _DINERS_LENGTHS),
    _Range(Brand.DINERS, 3095, 3095, 4, _DINERS_LENGTHS),
    _Range(Brand.DINERS, 36, 36, 2, _DINERS_LENGTHS),
    _Range(Brand.DINERS, 38, 39, 2, _DINERS_LENGTHS),
    _Range(Brand.UNIONPAY, 62, 62, 2, _SIXTEEN_TO_19),
    _Range(Brand.UNIONPAY, 81, 81, 2, _SIXTEEN_TO_19),
    _Range(Brand.MAESTRO, 5018, 5018, 4, _MAESTRO_LENGTHS),
    _Range(Brand.MAESTRO, 5020, 5020, 4, _MAESTRO_LENGTHS),
    _Range(Brand.MAESTRO, 5038, 5038, 4, _MAESTRO_LENGTHS),
    _Range(Brand.MAESTRO, 5893, 5893, 4, _MAESTRO_LENGTHS),
    _Range(Brand.MAESTRO, 6304, 6304, 4, _MAESTRO_LENGTHS),
    _Range(Brand.MAESTRO, 6759, 6759, 4, _MAESTRO_LENGTHS),
    _Range(Brand.MAESTRO, 6761, 6763, 4, _MAESTRO_LENGTHS),
)


def _match(digits: str) -> _Range | None:
    best: _Range | None = None
    for candidate in _RANGES:
        head = digits[: candidate.prefix_len]
        if len(head) < candidate.prefix_len or not head.isdigit():
            continue
        if candidate.low <= int(head) <= candidate.high and (
            best is None or candidate.prefix_len > best.prefix_len
        ):
            best = candidate
    return best


def brand_of(digits: str) -> Brand:
    """The brand whose IIN range matches the longest prefix of `digits`, else UNKNOWN."""
    found = _match(digits)
    return found.brand if found else Brand.UNKNOWN


def length_valid_for_brand(digits: str) -> bool:
    """True if the brand issues numbers of this length (always True for unknown brands)."""
    found = _match(digits)
    return found is None or len(digits) in found.lengths
