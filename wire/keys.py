"""The data key an event carries, wrapped, and how a reader gets it back (the protocol).

`provider` says how a data key was wrapped and so how to unwrap it (docs/event-format.md,
"Unwrapping the data key"). The terminal wraps (it never holds `kms:Decrypt`); the backend
unwraps with a `KeyUnwrapper` (`cloud.kms.KmsUnwrapper`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from wire.envelope import wrapped_key_digest

KMS_PROVIDER = "kms"
KMS_ALGORITHM = "SYMMETRIC_DEFAULT"
RSA_PROVIDER = "kms-rsa"
RSA_ALGORITHM = "RSAES_OAEP_SHA_256"


def rsa_oaep_sha256() -> padding.OAEP:
    """The padding of `RSA_ALGORITHM`: OAEP with SHA-256 and MGF1-SHA-256, no label (KMS's)."""
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    )


@dataclass(frozen=True)
class WrappedKey:
    """The data key of a record, as stored: wrapped, never plaintext.

    `provider` is `kms` (KMS GenerateDataKey ciphertext blob; unwrap with kms:Decrypt and the
    encryption context), `kms-rsa` (AES key wrapped locally with the public half of a KMS RSA
    key, RSAES_OAEP_SHA_256; unwrap with kms:Decrypt on that key) or `local` (development only).
    """

    key_id: str
    provider: str
    key_arn: str
    algorithm: str
    wrapped_key: bytes
    encryption_context: Mapping[str, str] = field(default_factory=dict)


class KeyUnwrapper(Protocol):
    """Turns a stored wrapped key back into plaintext (backend side, or tests and demo).

    Raises `wire.errors.KeyUnavailable` when it cannot (worth a retry)."""

    def unwrap(self, wrapped: WrappedKey) -> bytes: ...


class CachingUnwrapper:
    """Unwraps each data key once: a data key seals many records."""

    def __init__(self, inner: KeyUnwrapper) -> None:
        self._inner = inner
        self._keys: dict[str, bytes] = {}

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        # Keyed by the wrapped bytes too: a forged event reusing a key_id with other bytes
        # must not be handed the genuine key.
        cache_key = f"{wrapped.key_id}:{wrapped_key_digest(wrapped.wrapped_key)}"
        if cache_key not in self._keys:
            self._keys[cache_key] = self._inner.unwrap(wrapped)
        return self._keys[cache_key]
