"""Is this run of digits a card number? Luhn, or a length a no-Luhn brand issues.

Used by the parsers here and by the daemon's log redaction (which imports it; `drivers`
never imports the daemon). The Luhn check and the masks themselves are the contract's
(`wire.masking`): the cloud masks with the same rule.
"""

from __future__ import annotations

from drivers.card.brands import brand_match
from wire.masking import PAN_MAX_DIGITS, PAN_MIN_DIGITS, luhn_valid


def is_pan_shaped(digits: str) -> bool:
    """12-19 ASCII digits passing Luhn, or of a length issued by a brand that uses no Luhn.

    The second half keeps redaction from letting a non-Luhn card number (UnionPay...) through.
    """
    if not PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS:
        return False
    if luhn_valid(digits):
        return True
    match = brand_match(digits)
    return not match.luhn and match.lengths is not None and len(digits) in match.lengths
