"""What `posd devices`, `posd doctor` and the daemon's device list say about a card reader's
encryption: whether it encrypts (P2PE), its DUKPT scheme, its latest KSN, and how much of its
transaction counter it has used.

A DUKPT reader derives a key per transaction from a counter in its KSN; once the counter is
spent it stops encrypting, and the lane stops taking cards. Only re-injecting the reader with
a new initial key at a key-injection facility resets it, and that takes days: the warning
comes at `KSN_EXHAUSTION_WARNING` of the counter, not at the end. A KSN is no secret.
"""

from __future__ import annotations

from typing import Any

from drivers.base import Device
from drivers.card.encrypted import KSN_EXHAUSTION_WARNING, EncryptedCardData
from drivers.card.reader import CardReader
from posd.api_answers import P2peAnswer
from posd.card_data import P2PE

REINJECT_FIX = (
    "have the reader re-injected with a new key before it stops encrypting (the key-injection "
    "facility that injected it; keep a spare reader in the meantime)"
)
PERCENT = 100
# A KSN is shown as hex in groups of this many bytes joined by ':' (AES: BDK id, derivation
# id, counter): an all-digit KSN in one run would look like a card number, and every output
# redacts those.
KSN_GROUP_BYTES = 4
KSN_SEPARATOR = ":"


def ksn_text(ksn: bytes) -> str:
    """`FFFF9876:543210E0:0001`: a KSN as people and the redaction both read it."""
    hex_text = ksn.hex().upper()
    step = 2 * KSN_GROUP_BYTES
    return KSN_SEPARATOR.join(hex_text[i : i + step] for i in range(0, len(hex_text), step))


def p2pe_answer(device: Device | None) -> P2peAnswer | None:
    """The reader's encryption as the API and the CLI show it; None for any other device."""
    if not isinstance(device, CardReader):
        return None
    status = device.p2pe_status()
    if status is None:
        return {
            "encrypting": False,
            "scheme": None,
            "format": None,
            "last_ksn": None,
            "counter_used": None,
            "nearly_exhausted": False,
        }
    return {
        "encrypting": True,
        "scheme": status.scheme.value,
        "format": status.format,
        "last_ksn": ksn_text(status.last_ksn) if status.last_ksn is not None else None,
        "counter_used": status.counter_used,
        "nearly_exhausted": status.nearly_exhausted,
    }


def encryption_label(p2pe: P2peAnswer | None) -> str:
    """One cell: `-` (not a card reader), `clear`, or `p2pe SCHEME, KSN N% used`."""
    if p2pe is None:
        return "-"
    if not p2pe["encrypting"]:
        return "clear"
    used = p2pe["counter_used"]
    label = f"p2pe {p2pe['scheme']}"
    if used is not None:
        label += f", KSN {used * PERCENT:.0f}% used"
    return label + (" (NEARLY EXHAUSTED)" if p2pe["nearly_exhausted"] else "")


def exhaustion_warning(name: str, p2pe: P2peAnswer | None) -> str | None:
    """The line that says a reader's DUKPT counter is nearly spent, or None."""
    if p2pe is None or not p2pe["nearly_exhausted"] or p2pe["counter_used"] is None:
        return None
    return (
        f"{name}: DUKPT transaction counter {p2pe['counter_used'] * PERCENT:.0f}% used "
        f"(warning at {KSN_EXHAUSTION_WARNING * PERCENT:.0f}%, KSN {p2pe['last_ksn']})"
    )


def encrypted_fields(card: EncryptedCardData) -> dict[str, Any]:
    """What may be shown of an encrypted read (`posd devices test`, `posd decode`): the masked
    fields, the KSN, scheme and format, and each encrypted track's clear length (never its
    ciphertext, which is no use to anyone here)."""
    return {
        **card.clear_metadata(),
        "card_data": P2PE,
        "expiry": str(card.expiry) if card.expiry is not None else None,
        "ksn": ksn_text(card.ksn),
        "scheme": card.scheme.value,
        "format": card.format,
        "device_serial": card.device_serial,
        "encrypted_tracks": [{"track": t.track, "length": t.length} for t in card.tracks],
    }
