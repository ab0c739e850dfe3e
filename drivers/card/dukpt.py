"""DUKPT: the per-transaction keys a secure reader encrypts with (ANSI X9.24-1 TDES, X9.24-3 AES).

The terminal never decrypts: this module is the simulated secure reader's encryptor, and the
local stand-in for AWS Payment Cryptography decrypts with it. No maintained Python DUKPT
package is on the package index this project installs from, so it is a small module on
`cryptography`, tested on the standards' published vectors (tests/drivers/card/test_dukpt.py).

STUB: the signatures below are the contract; the bodies land with the DUKPT work.
"""

from __future__ import annotations

from wire.p2pe import DukptScheme


class DukptError(ValueError):
    """A key, KSN or ciphertext DUKPT cannot use (wrong length, counter exhausted...)."""


def initial_key(bdk: bytes, ksn: bytes, scheme: DukptScheme) -> bytes:
    """The IPEK (TDES) / initial key (AES) the reader is injected with for this KSN's device."""
    raise NotImplementedError


def data_key(bdk: bytes, ksn: bytes, scheme: DukptScheme) -> bytes:
    """The data-encryption key of the transaction `ksn` names (TDES: the data variant of the
    transaction key, request direction; AES: the derived data-encryption key, both ways)."""
    raise NotImplementedError


def encrypt(bdk: bytes, ksn: bytes, scheme: DukptScheme, plaintext: bytes) -> bytes:
    """CBC with a zero IV under `data_key`, plaintext zero-padded to whole blocks (what
    secure readers do: the clear length travels beside the ciphertext)."""
    raise NotImplementedError


def decrypt(bdk: bytes, ksn: bytes, scheme: DukptScheme, ciphertext: bytes) -> bytes:
    """The inverse of `encrypt` (padding kept: the caller cuts at the clear length)."""
    raise NotImplementedError


def counter(ksn: bytes, scheme: DukptScheme) -> int:
    """The transaction counter a KSN carries (21 bits TDES, 32 bits AES)."""
    raise NotImplementedError


def counter_exhaustion(ksn: bytes, scheme: DukptScheme) -> float:
    """The fraction of the device's usable transaction counters used so far (0.0-1.0): a
    reader near 1.0 must be re-injected before it stops encrypting."""
    raise NotImplementedError
