"""Last line of defence: strip card numbers and track data from any text or log event.

Two things are redacted wherever they appear, whatever key or nesting they hide in:
- any run of 12-19 digits (optionally grouped by single spaces or dashes) that passes Luhn;
- anything shaped like magstripe track 1 (`%B<digits>^...`) or track 2 (`;<digits>=...`)
  data, with or without sentinels, whether or not the number passes Luhn.

Redaction is deliberately over-eager: a false positive costs a log line some digits, a false
negative costs a PCI incident. Output meant to carry long numbers verbatim (hash chains, event
payloads) does not go through it; everything a human or journald reads does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from drivers.pan import PAN_MAX_DIGITS, PAN_MIN_DIGITS, is_pan_shaped

PAN_PLACEHOLDER = "[REDACTED-PAN]"
TRACK_PLACEHOLDER = "[REDACTED-TRACK]"

# Track 1: optional %, format code B, PAN, ^, name, ^, rest up to ? or end of the token.
_TRACK1 = re.compile(r"%?[Bb]\d{8,19}\^[^^\n]{0,26}\^[^?\s\"']*\??")
# Track 2: optional ;, PAN, = (or D in EMV tag 57 hex form), expiry/service code/discretionary.
_TRACK2 = re.compile(r";?\d{8,19}[=Dd]\d{4}[^?\s\"'<>]*\??")
# Digit runs with optional single separators between groups.
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){11,}")


def _redact_digit_run(match: re.Match[str]) -> str:
    """Redact a digit run if it, or any 12-19 digit stretch inside it, passes Luhn.

    Stretches matter: a card number glued to other digits (a hex TLV dump such as
    `5A08<PAN>5F24...`) is still a card number. The price is that about half of all random
    13-19 digit numbers are redacted too.
    """
    run = match.group(0)
    digits = run.replace(" ", "").replace("-", "")
    for size in range(PAN_MIN_DIGITS, min(len(digits), PAN_MAX_DIGITS) + 1):
        for start in range(len(digits) - size + 1):
            if is_pan_shaped(digits[start : start + size]):
                return PAN_PLACEHOLDER
    return run


def redact_text(text: str) -> str:
    """`text` with every track-like string and Luhn-valid card number replaced."""
    text = _TRACK1.sub(TRACK_PLACEHOLDER, text)
    text = _TRACK2.sub(TRACK_PLACEHOLDER, text)
    return _DIGIT_RUN.sub(_redact_digit_run, text)


def redact_value(value: Any) -> Any:
    """Recursively redact strings (and keys) inside mappings, sequences and other objects."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        hides_pan = value.is_integer() and redact_value(int(value)) == PAN_PLACEHOLDER
        return PAN_PLACEHOLDER if hides_pan else value
    if isinstance(value, int):
        text = str(value)
        return PAN_PLACEHOLDER if redact_text(text) != text else value
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("latin-1"))
    if isinstance(value, Mapping):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    return redact_text(str(value))


def redact_event(_logger: object, _method: str, event_dict: Any) -> Any:
    """structlog processor: redact every key and value of the event."""
    return {redact_value(k): redact_value(v) for k, v in event_dict.items()}
