"""Primary account numbers: Luhn check and PCI-compliant masking.

Shared by the parsers here and by the daemon's log redaction (which imports it; `drivers`
never imports the daemon).
"""

from __future__ import annotations

PAN_MIN_DIGITS = 12
PAN_MAX_DIGITS = 19
MASK_KEEP_FIRST = 6  # BIN
MASK_KEEP_LAST = 4
MASK_CHAR = "*"


def luhn_valid(digits: str) -> bool:
    """True if `digits` (ASCII digits only, at least two) passes the Luhn mod-10 check."""
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_pan_shaped(digits: str) -> bool:
    """12-19 ASCII digits passing Luhn, or of a length issued by a brand that uses no Luhn.

    The second half keeps redaction from letting a non-Luhn card number (UnionPay...) through.
    """
    # Imported here: the brand table imports this module's length limits.
    from drivers.card.brands import brand_match

    if not PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS:
        return False
    if luhn_valid(digits):
        return True
    match = brand_match(digits)
    return not match.luhn and match.lengths is not None and len(digits) in match.lengths


def mask_pan(pan: str) -> str:
    """At most BIN (first six) and last four in clear, the rest masked (PCI DSS 3.4.1).

    Numbers too short to keep ten digits in clear and still hide some keep only the last four.
    """
    if len(pan) <= MASK_KEEP_FIRST + MASK_KEEP_LAST:
        return MASK_CHAR * max(len(pan) - MASK_KEEP_LAST, 0) + pan[-MASK_KEEP_LAST:]
    hidden = len(pan) - MASK_KEEP_FIRST - MASK_KEEP_LAST
    return pan[:MASK_KEEP_FIRST] + MASK_CHAR * hidden + pan[-MASK_KEEP_LAST:]
