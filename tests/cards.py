"""Public test card numbers published by the card brands, and sample sensitive payloads."""

from __future__ import annotations

import json

STORE_ID = "store-test"
TERMINAL_ID = "lane-test"

VISA_TEST_PAN = "4111111111111111"
MASTERCARD_TEST_PAN = "5555555555554444"
AMEX_TEST_PAN = "378282246310005"
DISCOVER_TEST_PAN = "6011111111111117"
TEST_PANS = (VISA_TEST_PAN, MASTERCARD_TEST_PAN, AMEX_TEST_PAN, DISCOVER_TEST_PAN)


def payment_meta(pan: str, amount: int = 1234, currency: str = "EUR") -> dict[str, object]:
    return {
        "amount": amount,
        "currency": currency,
        "bin": pan[:6],
        "last4": pan[-4:],
        "entry_mode": "chip",
        "lane": TERMINAL_ID,
    }


def payment_secret(pan: str) -> bytes:
    return json.dumps(
        {"pan": pan, "expiry": "2512", "track2": f";{pan}=25121010000000000000?"}
    ).encode()
