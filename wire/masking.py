"""What of a card number or a palm credential may ever be shown: Luhn, PAN and credential masks.

One rule for both sides: the terminal's parsers, log redaction and CLI, and the cloud
consumer's payments table (PCI DSS 3.4.1: BIN and last four at most).
"""

from __future__ import annotations

PAN_MIN_DIGITS = 12
PAN_MAX_DIGITS = 19
MASK_KEEP_FIRST = 6  # BIN
MASK_KEEP_LAST = 4
MASK_CHAR = "*"
CREDENTIAL_MAX_VISIBLE_CHARS = 4
# At most this fraction of a credential is ever shown (short badge ids show one char or none).
CREDENTIAL_MAX_VISIBLE_FRACTION = 4


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


def mask_pan(pan: str) -> str:
    """At most BIN (first six) and last four in clear, the rest masked (PCI DSS 3.4.1).

    Numbers too short to keep ten digits in clear and still hide some keep only the last four.
    """
    if len(pan) <= MASK_KEEP_FIRST + MASK_KEEP_LAST:
        return MASK_CHAR * max(len(pan) - MASK_KEEP_LAST, 0) + pan[-MASK_KEEP_LAST:]
    hidden = len(pan) - MASK_KEEP_FIRST - MASK_KEEP_LAST
    return pan[:MASK_KEEP_FIRST] + MASK_CHAR * hidden + pan[-MASK_KEEP_LAST:]


def mask_credential(value: str) -> str:
    """`****abcd`: the last few characters only, never more than a quarter of it.

    Masking rather than hashing: a badge id may have little entropy, and a short unsalted
    hash of it could be reversed by trying every id.
    """
    visible = min(CREDENTIAL_MAX_VISIBLE_CHARS, len(value) // CREDENTIAL_MAX_VISIBLE_FRACTION)
    shown = value[len(value) - visible :] if visible else ""
    return MASK_CHAR * (len(value) - visible) + shown
