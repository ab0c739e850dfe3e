"""The register's request bodies, validated field by field into typed values.

Every problem is a `validation_error` naming each bad field; unknown fields are problems too,
so a typo in the register's integration cannot silently change a payment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from drivers.card.protocol import MAX_AMOUNT_DIGITS
from posd.daemon.refusals import VALIDATION_ERROR, refuse
from posd.errors import Refusal
from posd.journal.rows import MAX_AMOUNT_MINOR

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


def body_too_large() -> Refusal:
    return refuse(VALIDATION_ERROR, f"the body is larger than {MAX_BODY_BYTES} bytes")


def parse_json_body(raw: bytes) -> Any:
    """The JSON document of a request body; `validation_error` if it is not one."""
    if len(raw) > MAX_BODY_BYTES:
        raise body_too_large()
    try:
        return json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise refuse(VALIDATION_ERROR, "the body is not a JSON document") from None


def valid_client_ref(value: object) -> bool:
    return isinstance(value, str) and CLIENT_REF_PATTERN.fullmatch(value) is not None


def check_client_ref(value: str) -> None:
    """For client refs taken from a URL path."""
    if not valid_client_ref(value):
        raise refuse(
            VALIDATION_ERROR,
            "invalid client_ref",
            {"client_ref": "1 to 100 letters, digits, '.', '_' or '-'"},
        )


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
    problems: dict[str, str] = {
        name: "unknown field" for name in body if name not in PAYMENT_FIELDS
    }
    if not valid_client_ref(body.get("client_ref")):
        problems["client_ref"] = "1 to 100 letters, digits, '.', '_' or '-'"
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
    return PaymentRequest(
        str(body["client_ref"]),
        int(body["amount_minor"]),  # whole: checked above
        str(currency),
        str(method),
        float(timeout),
    )
