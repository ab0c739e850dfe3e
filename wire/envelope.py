"""Per-record envelope encryption and the hash chain.

A record's sensitive payload is sealed with AES-256-GCM under a data key. The associated data
(AAD) is the canonical JSON of the record's identity and clear metadata, so changing any clear
field, or swapping ciphertexts between records, makes decryption fail. The AAD also carries the
SHA-256 of the wrapped data key, so the chain covers the key a record claims to use.

Canonical JSON: UTF-8, keys sorted, no whitespace (`separators=(",", ":")`), ASCII escapes.
The chain links records: chain[n] = SHA-256(chain[n-1] || SHA-256(aad[n]) || nonce[n] ||
ciphertext[n]), starting from 32 zero bytes (or the anchor kept when old records are purged).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wire.errors import EnvelopeError

ALGORITHM = "AES-256-GCM"
AAD_SCHEMA = "posd.record.v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
CHAIN_BYTES = 32
GENESIS_CHAIN = bytes(CHAIN_BYTES)
# The fields of a record's identity that are both sealed in its AAD and in clear in its
# event's Detail: a reader compares them (`wire.opening.sealed_identity`).
SEALED_IDENTITY_FIELDS = (
    "seq",
    "event_id",
    "kind",
    "captured_at",
    "client_ref",
    "store_id",
    "terminal_id",
    "meta",
)

MetaValue = str | int | bool | None


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_ascii_json(value: Any) -> bytes:
    """The AAD's encoding: sorted keys, no whitespace, non-ASCII as \\u escapes (pure ASCII).

    Differs on purpose from the event Detail's `wire.events.detail_json` (UTF-8 text): these
    bytes are hashed into the chain and must never change with a JSON library's defaults."""
    return _CANONICAL.encode(value).encode()


@dataclass(frozen=True)
class RecordIdentity:
    """Everything about a record that is in clear and bound to its ciphertext."""

    seq: int
    event_id: str
    kind: str
    captured_at: str
    client_ref: str | None
    store_id: str
    terminal_id: str
    meta: Mapping[str, MetaValue]
    data_key_id: str
    wrapped_key_sha256: str

    def aad(self) -> bytes:
        sealed: dict[str, Any] = {name: getattr(self, name) for name in SEALED_IDENTITY_FIELDS}
        sealed["meta"] = dict(self.meta)
        sealed["schema"] = AAD_SCHEMA
        sealed["data_key"] = {"id": self.data_key_id, "sha256": self.wrapped_key_sha256}
        return canonical_ascii_json(sealed)


def wrapped_key_digest(wrapped_key: bytes) -> str:
    return hashlib.sha256(wrapped_key).hexdigest()


class Sealer:
    """Seals records under one data key (keeps the AES key schedule between records)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise EnvelopeError(f"data key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Encrypt: returns (nonce, ciphertext with tag), a fresh random 96-bit nonce each time."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt, raising `EnvelopeError` if anything (key, nonce, ciphertext, AAD) is wrong."""
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES or len(ciphertext) < TAG_BYTES:
        raise EnvelopeError("envelope has a malformed key, nonce or ciphertext")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as error:
        raise EnvelopeError("envelope authentication failed: tampered or wrong key") from error


def chain_next(previous: bytes, aad: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    digest = hashlib.sha256(previous)
    digest.update(hashlib.sha256(aad).digest())
    digest.update(nonce)
    digest.update(ciphertext)
    return digest.digest()
