"""The register's request bodies, validated field by field into typed values.

Every problem is a `validation_error` naming each bad field; unknown fields are problems too,
so a typo in the register's integration cannot silently change a payment. The JSON parser is
strict where Python's is lenient: a key given twice is refused (a proxy that keeps the first
would see another payment than we do), a number literal longer than any valid value is refused
before conversion (an int of 4,300+ digits raises in `int()`), and so are NaN and Infinity.
What the answer names back (field names) goes through the log redactor, shortened.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from drivers.card.protocol import MAX_AMOUNT_DIGITS
from posd.currency import is_active
from posd.daemon.refusals import (
    CARD_NUMBER_IN_CLIENT_REF,
    UNKNOWN_CURRENCY,
    VALIDATION_ERROR,
    refuse,
)
from posd.errors import Refusal
from posd.journal.rows import MAX_AMOUNT_MINOR
from posd.redact import redact_text

CARD = "card"
PALM = "palm"
CARD_OR_PALM = "card+palm"
METHODS = (CARD, PALM, CARD_OR_PALM)
# Letters, digits, '.', '_', '-': never ':' (the daemon derives a void's own key with it).
CLIENT_REF_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,100}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 120.0
MAX_BODY_BYTES = 16_384
# Longer than any number a request may hold (an amount has at most 13 digits; a wait such as
# 0.333333333333333314829616256247 is written in full by some encoders).
MAX_NUMBER_CHARS = 40
MAX_ECHOED_NAME = 40  # an unknown field's name is named back at most this long
CLIENT_REF_EXPECTED = "1 to 100 letters, digits, '.', '_' or '-'"
TIMEOUT_EXPECTED = f"a number of seconds above 0, at most {MAX_TIMEOUT_S:g}"
# What a payment may ask for: the journal takes 13 digits, the card reader's protocol 12 (a
# larger amount reached the reader's encoder and answered 500; found by schemathesis).
MAX_PAYMENT_MINOR = min(MAX_AMOUNT_MINOR, 10**MAX_AMOUNT_DIGITS - 1)
PAYMENT_FIELDS = ("client_ref", "amount_minor", "currency", "method", "timeout_s")


@dataclass(frozen=True)
class PaymentRequest:
    client_ref: str
    amount_minor: int
    currency: str
    method: str
    timeout_s: float = DEFAULT_TIMEOUT_S

    def same_payment(self, amount_minor: object, currency: object, method: object) -> bool:
        """Whether a retry asks for the same payment (the wait it allows may differ)."""
        return (amount_minor, currency, method) == (self.amount_minor, self.currency, self.method)


def _bounded(literal: str) -> str:
    if len(literal) > MAX_NUMBER_CHARS:
        raise refuse(VALIDATION_ERROR, f"a number is longer than {MAX_NUMBER_CHARS} characters")
    return literal


def _int(literal: str) -> int:
    return int(_bounded(literal))


def _float(literal: str) -> float:
    return float(_bounded(literal))


def _no_constant(literal: str) -> Any:
    raise refuse(VALIDATION_ERROR, "NaN and Infinity are not JSON numbers")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise refuse(VALIDATION_ERROR, "an object gives the same key twice")
    return document


def body_too_large() -> Refusal:
    return refuse(VALIDATION_ERROR, f"the body is larger than {MAX_BODY_BYTES} bytes")


def parse_json_body(raw: bytes) -> Any:
    """The JSON document of a request body; `validation_error` if it is not one."""
    if len(raw) > MAX_BODY_BYTES:
        raise body_too_large()
    if not raw.strip():
        return {}
    try:
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_object,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise refuse(VALIDATION_ERROR, "the body is not a JSON document") from None


def echoed(name: object) -> str:
    """A name from the request as an answer may name it back: redacted, shortened."""
    text = redact_text(str(name))
    return text if len(text) <= MAX_ECHOED_NAME else text[: MAX_ECHOED_NAME - 3] + "..."


def holds_card_number(client_ref: str) -> bool:
    """Whether the logs' redactor would hide part of it (a Luhn-valid 12-19 digit run...)."""
    return redact_text(client_ref) != client_ref


def valid_client_ref(value: object) -> bool:
    return isinstance(value, str) and CLIENT_REF_PATTERN.fullmatch(value) is not None


def refuse_card_number(client_ref: object) -> None:
    """A client_ref shaped like a card number would put card data in clear in the journal's
    index, the answers and the logs: refused with its own code, never echoed."""
    if isinstance(client_ref, str) and holds_card_number(client_ref):
        raise refuse(
            CARD_NUMBER_IN_CLIENT_REF,
            "the client_ref looks like a card number; use the register's own reference",
        )


def check_client_ref(value: str) -> None:
    """For client refs taken from a URL path."""
    refuse_card_number(value)
    if not valid_client_ref(value):
        raise refuse(VALIDATION_ERROR, "invalid client_ref", {"client_ref": CLIENT_REF_EXPECTED})


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole_number(value: object) -> int | None:
    """An integer, also written `609.0`: JSON has one number type, and the document's
    `integer` (JSON Schema) is any number without a fraction (found by schemathesis). Amounts
    are below 2^53, where every whole float is exact."""
    if _is_int(value):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def valid_timeout(value: object) -> TypeGuard[float]:
    """A wait in seconds: a number (not a bool) above 0, at most MAX_TIMEOUT_S."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and 0 < value <= MAX_TIMEOUT_S  # type: ignore[operator]


def parse_payment_request(body: Any) -> PaymentRequest:
    if not isinstance(body, dict):
        raise refuse(VALIDATION_ERROR, "the body must be a JSON object")
    refuse_card_number(body.get("client_ref"))
    problems: dict[str, str] = {
        echoed(name): "unknown field" for name in body if name not in PAYMENT_FIELDS
    }
    if not valid_client_ref(body.get("client_ref")):
        problems["client_ref"] = CLIENT_REF_EXPECTED
    amount = _whole_number(body.get("amount_minor"))
    if not (amount is not None and 0 < amount <= MAX_PAYMENT_MINOR):
        problems["amount_minor"] = f"an integer from 1 to {MAX_PAYMENT_MINOR} (minor units)"
    currency = body.get("currency")
    if not (isinstance(currency, str) and CURRENCY_PATTERN.fullmatch(currency)):
        problems["currency"] = "a three-letter ISO 4217 code in capitals"
    method = body.get("method")
    if method not in METHODS:
        problems["method"] = f"one of {', '.join(METHODS)}"
    timeout = body.get("timeout_s", DEFAULT_TIMEOUT_S)
    if not valid_timeout(timeout):
        problems["timeout_s"] = TIMEOUT_EXPECTED
    if problems:
        raise refuse(
            VALIDATION_ERROR, "invalid payment request: " + ", ".join(sorted(problems)), problems
        )
    if not is_active(str(currency)):
        raise refuse(
            UNKNOWN_CURRENCY,
            "the currency is not an active ISO 4217 code",
            {"currency": "an active ISO 4217 currency code, such as EUR"},
        )
    return PaymentRequest(
        str(body["client_ref"]),
        int(body["amount_minor"]),  # whole: checked above
        str(currency),
        str(method),
        float(timeout),
    )
