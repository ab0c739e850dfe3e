"""What of a decrypted payload the payments table may keep: the masked forms only.

The reference consumer proves it could decrypt a record and files the payment; it never writes
card data or a palm credential in clear (PCI DSS 3.4.1: BIN and last four at most). A real
consumer would hand the clear payload to its processor or tokenizer here, in memory. A P2PE
record's secret holds no clear card number at all, only the reader's encrypted block
(`cloud.p2pe`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wire.errors import EnvelopeError
from wire.masking import mask_credential, mask_pan


def secret_of(plaintext: bytes) -> dict[str, Any]:
    """The decrypted payload as a JSON object (`{}` for a void, which carries nothing)."""
    try:
        secret = json.loads(plaintext) if plaintext else {}
    except ValueError as error:
        raise EnvelopeError("the decrypted payload is not JSON") from error
    if not isinstance(secret, dict):
        raise EnvelopeError("the decrypted payload is not a JSON object")
    return secret


def masked_payload(secret: Mapping[str, Any]) -> dict[str, str]:
    """`{"masked_pan": ...}`, `{"masked_credential": ...}`, or `{}`."""
    summary: dict[str, str] = {}
    if isinstance(secret.get("pan"), str):
        summary["masked_pan"] = mask_pan(secret["pan"])
    if isinstance(secret.get("palm_credential"), str):
        summary["masked_credential"] = mask_credential(secret["palm_credential"])
    return summary
