"""Last line of defence: strip card numbers, track data and credentials from any text or log
event.

Three things are redacted wherever they appear, whatever key or nesting they hide in:
- any run of 12-19 digits that passes Luhn, the digit groups joined by any run of separators
  (space, `.`, `_`, `-`, any whitespace), in any Unicode decimal digits;
- anything shaped like magstripe track 1 (`%B<digits>^...`) or track 2 (`;<digits>=...`)
  data, with or without sentinels, whether or not the number passes Luhn;
- the value after a credential's name (`Authorization`, `X-Amz-Security-Token`, a secret
  key, a signature, any `...token` or `...secret`, a password) written `name: value`,
  `name=value` or `'name': 'value'`, and the value of an event key so named: botocore's
  debug dump of a signed request holds all of them.

Matching runs on the NFKC form of the text (so full-width digits U+FF10..U+FF19, mathematical
or superscript digits and full-width separators count as what they look like), but the
replacement is made in the original text: everything around a match is left as it was.

Redaction is deliberately over-eager: a false positive costs a log line some digits, a false
negative costs a PCI incident. Output meant to carry long numbers verbatim (hash chains, event
payloads) does not go through it; everything a human or journald reads does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from drivers.pan import is_pan_shaped
from wire.masking import PAN_MAX_DIGITS, PAN_MIN_DIGITS

PAN_PLACEHOLDER = "[REDACTED-PAN]"
TRACK_PLACEHOLDER = "[REDACTED-TRACK]"
CREDENTIAL_PLACEHOLDER = "[REDACTED-CREDENTIAL]"
NORMAL_FORM: Final[Literal["NFKC"]] = "NFKC"

# Track 1: optional %, format code B, PAN, ^, name, ^, rest up to ? or end of the token.
_TRACK1 = re.compile(r"%?[Bb]\d{8,19}\^[^^\n]{0,26}\^[^?\s\"']*\??")
# Track 2: optional ;, PAN, = (or D in EMV tag 57 hex form), expiry/service code/discretionary.
_TRACK2 = re.compile(r";?\d{8,19}[=Dd]\d{4}[^?\s\"'<>]*\??")
# Digit runs, the digits grouped by any runs of separators. `\d` and `\s` are Unicode-aware.
_DIGIT_RUN = re.compile(r"\d(?:[\s._-]*\d){11,}")
_NOT_DIGIT = re.compile(r"\D+")
# Names whose value is a credential, in any case ('-', '_' or nothing between the words).
_CREDENTIAL_NAME = (
    r"(?:authorization|x-amz-security-token|x-amz-signature|x-amz-credential|credentials?"
    r"|(?:aws[_-]?)?secret[_-]?access[_-]?key|signature|passw(?:or)?d|api[_-]?key"
    r"|private[_-]?key|[a-z_-]*token|[a-z_-]*secret)"
)
# A value already masked by its owner (`****************4b8a`, as a palm credential is shown):
# its last four are what the technician needs to tell one from another, nothing to redact.
_MASKED = r"\*{4,}[^\s'\"*]{0,4}(?![^\s'\",;&}\]])"
# `'name': 'value'`, `"name": b"value"`, `name="value"`: the whole quoted value.
_QUOTED_CREDENTIAL = re.compile(
    rf"(?i)({_CREDENTIAL_NAME}['\"]?\s*[:=]\s*b?)(['\"])(?!{_MASKED}['\"])(.*?)(?<!\\)\2"
)
# `name: value`, `name=value` (a header line, a query string, `Signature:` and a new line).
_BARE_CREDENTIAL = re.compile(
    rf"(?i)({_CREDENTIAL_NAME}\s*[:=]\s*)(?!['\"\s]|b['\"]|\[REDACTED|{_MASKED})([^\s'\",;&}}\]]+)"
)
_CREDENTIAL_KEY = re.compile(rf"(?i){_CREDENTIAL_NAME}")
_MASKED_VALUE = re.compile(_MASKED)

_Replace = Callable[[re.Match[str]], str]


def _digits_of(run: str) -> str:
    """The ASCII digits of `run`, whatever decimal digit block they were written in."""
    digits = _NOT_DIGIT.sub("", run)
    if digits.isascii():
        return digits
    return "".join(str(unicodedata.decimal(ch)) for ch in digits)


def _redact_digit_run(match: re.Match[str]) -> str:
    """Redact a digit run if it, or any 12-19 digit stretch inside it, passes Luhn.

    Stretches matter: a card number glued to other digits (a hex TLV dump such as
    `5A08<PAN>5F24...`) is still a card number. The price is that about half of all random
    13-19 digit numbers are redacted too.
    """
    run = match.group(0)
    digits = _digits_of(run)
    for size in range(PAN_MIN_DIGITS, min(len(digits), PAN_MAX_DIGITS) + 1):
        for start in range(len(digits) - size + 1):
            if is_pan_shaped(digits[start : start + size]):
                return PAN_PLACEHOLDER
    return run


def _track_placeholder(_match: re.Match[str]) -> str:
    return TRACK_PLACEHOLDER


def _normalised(text: str) -> tuple[str, list[int]]:
    """NFKC of `text`, character by character, and for each output character the index of
    the input character it came from (NFKC may turn one character into several)."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = char if char.isascii() else unicodedata.normalize(NORMAL_FORM, char)
        chars.append(folded)
        origin.extend([index] * len(folded))
    return "".join(chars), origin


def _sub(pattern: re.Pattern[str], replace: _Replace, text: str) -> str:
    """`pattern.sub(replace, text)`, matched on the NFKC form of `text`, replaced in `text`.

    ASCII and already-normalised text (nearly every log line) take the plain `sub`: the
    patterns' digit and whitespace classes match Unicode digits and spaces by themselves.
    """
    if text.isascii() or unicodedata.is_normalized(NORMAL_FORM, text):
        return pattern.sub(replace, text)
    normal, origin = _normalised(text)
    pieces: list[str] = []
    done = 0
    for match in pattern.finditer(normal):
        replacement = replace(match)
        if replacement == match.group(0):
            continue
        # Whole original characters go, even if the match took only part of one's NFKC form.
        start = max(done, origin[match.start()])
        pieces += [text[done:start], replacement]
        done = origin[match.end() - 1] + 1
    return "".join(pieces) + text[done:]


def _redact_credentials(text: str) -> str:
    text = _QUOTED_CREDENTIAL.sub(rf"\1\2{CREDENTIAL_PLACEHOLDER}\2", text)
    return _BARE_CREDENTIAL.sub(rf"\1{CREDENTIAL_PLACEHOLDER}", text)


def is_credential_name(name: object) -> bool:
    """Whether a key so named holds a credential (`palm_token`, `secret_access_key`...)."""
    return isinstance(name, str) and _CREDENTIAL_KEY.fullmatch(name) is not None


def redact_text(text: str) -> str:
    """`text` with every track-like string, Luhn-valid card number and credential replaced."""
    text = _redact_credentials(text)
    text = _sub(_TRACK1, _track_placeholder, text)
    text = _sub(_TRACK2, _track_placeholder, text)
    return _sub(_DIGIT_RUN, _redact_digit_run, text)


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
        return {redact_value(k): _redact_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    return redact_text(str(value))


def _redact_item(key: object, value: Any) -> Any:
    masked = isinstance(value, str) and _MASKED_VALUE.fullmatch(value) is not None
    if value is not None and is_credential_name(key) and not masked:
        return CREDENTIAL_PLACEHOLDER
    return redact_value(value)


def redact_event(_logger: object, _method: str, event_dict: Any) -> Any:
    """structlog processor: redact every key and value of the event."""
    return {redact_value(k): _redact_item(k, v) for k, v in event_dict.items()}
