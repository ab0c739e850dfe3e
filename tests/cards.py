"""Public test card numbers published by the card brands, and sample sensitive payloads.

The numbers come from the simulated reader's deck (`drivers.card.deck.TEST_PANS`), the one
list of test cards in the project; this module only names the ones tests reach for.
"""

from __future__ import annotations

import json

from drivers.card import secure_swipes
from drivers.card.brands import Brand
from drivers.card.deck import TEST_PANS as DECK
from drivers.card.deck import magstripe_card
from drivers.sensitive import SecretStr


def magstripe_tracks(pan: str) -> dict[int, SecretStr]:
    """The deck's tracks 1 and 2 for a test number, by track number (a secure head's input)."""
    return secure_swipes.magstripe_tracks(magstripe_card(f"test-{pan[-4:]}", pan))


def first_test_pan(brand: Brand) -> str:
    return next(pan for deck_brand, pan in DECK if deck_brand is brand)


STORE_ID = "store-test"
TERMINAL_ID = "lane-test"

VISA_TEST_PAN = first_test_pan(Brand.VISA)
MASTERCARD_TEST_PAN = first_test_pan(Brand.MASTERCARD)
AMEX_TEST_PAN = first_test_pan(Brand.AMEX)
DISCOVER_TEST_PAN = first_test_pan(Brand.DISCOVER)
SECOND_VISA_TEST_PAN = [pan for brand, pan in DECK if brand is Brand.VISA][1]
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
