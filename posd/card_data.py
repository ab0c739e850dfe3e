"""What the terminal holds of a card: clear card data, or only what a P2PE reader lets out.

`[payments] card_data = "clear"` (the default): the reader hands the host the card number and
the terminal seals it into the record. `"p2pe"`: an encrypting reader (`secure-msr`) hands it
masked fields and a DUKPT-encrypted block that only AWS Payment Cryptography can open, under
the BDK `p2pe_key_ref` names. The mode and the reader must agree, or the lane would either
journal clear numbers it promised not to hold, or take reads it cannot use: `check_card_data`
refuses both at config load.
"""

from __future__ import annotations

from posd.errors import ConfigError

CLEAR = "clear"
P2PE = "p2pe"
CARD_DATA_MODES = (CLEAR, P2PE)
# The card-reader drivers that encrypt in the reader's head (they return EncryptedCardRead).
ENCRYPTING_READERS = frozenset({"secure-msr", "simulated-secure-msr"})
# AWS Payment Cryptography's key identifiers: an alias name, a key ARN or an alias ARN.
KEY_ALIAS_PREFIX = "alias/"
KEY_ARN_PREFIX = "arn:aws:payment-cryptography:"


def check_key_ref(key_ref: str | None) -> None:
    """`ValueError` ("p2pe_key_ref: why") for a reference AWS Payment Cryptography would not
    take; None is for the caller to judge (required only in P2PE mode)."""
    if key_ref is None:
        return
    if not key_ref.strip() or any(char.isspace() for char in key_ref):
        raise ValueError("p2pe_key_ref: must not be empty or hold spaces")
    if not key_ref.startswith((KEY_ALIAS_PREFIX, KEY_ARN_PREFIX)):
        raise ValueError(
            "p2pe_key_ref: the BDK in AWS Payment Cryptography: an alias "
            f"('{KEY_ALIAS_PREFIX}NAME') or a key or alias ARN ('{KEY_ARN_PREFIX}...')"
        )


def check_card_data(card_data: str, key_ref: str | None, driver: str | None, path: str) -> None:
    """`ConfigError` naming the key when the mode, its key and the card reader's `driver`
    (None: no card reader) disagree."""
    if card_data == P2PE:
        if key_ref is None:
            raise ConfigError(
                path,
                "payments.p2pe_key_ref",
                'required with card_data = "p2pe": the BDK\'s alias or ARN in AWS Payment '
                'Cryptography, e.g. p2pe_key_ref = "alias/posd-bdk"',
            )
        if driver is not None and driver not in ENCRYPTING_READERS:
            raise ConfigError(
                path,
                "payments.card_data",
                f'"p2pe" needs an encrypting card reader, and driver {driver!r} '
                "([devices.card_reader]) does not encrypt: use "
                f'{" or ".join(sorted(ENCRYPTING_READERS))}, or card_data = "clear"',
            )
    elif driver in ENCRYPTING_READERS:
        raise ConfigError(
            path,
            "payments.card_data",
            f'"{card_data}" with driver {driver!r} ([devices.card_reader]): that reader '
            "encrypts, and the terminal cannot read its card numbers: set "
            'card_data = "p2pe" and p2pe_key_ref',
        )
