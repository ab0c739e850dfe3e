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
# The providers whose wrapped key proves who sealed the record: a KMS data key is bound to its
# encryption context (the terminal's IAM policy pins it to the lane's certificate). Anyone
# with the RSA public key can wrap a `kms-rsa` key: such records are proven only by a signed
# checkpoint covering them (`wire.signing`).
IDENTITY_BINDING_PROVIDERS = frozenset({KMS_PROVIDER})
KMS_ALGORITHM = "SYMMETRIC_DEFAULT"
RSA_PROVIDER = "kms-rsa"
RSA_ALGORITHM = "RSAES_OAEP_SHA_256"


def identity_context(store_id: str, terminal_id: str) -> dict[str, str]:
    """The KMS encryption context of a lane's data keys: the terminal asks KMS for data keys
    under it (IAM pins it to the lane's certificate), and a reader unwraps under the identity
    a record claims, never under the context the event carries."""
    return {"store_id": store_id, "terminal_id": terminal_id}


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
