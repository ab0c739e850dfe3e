"""Recovering data keys with kms:Decrypt: what the backend does with an event's envelope.

A terminal's role never has kms:Decrypt, and posd never imports this module (an architecture
test holds both packages to that): the terminal wraps (`posd.keys.kms`), the cloud unwraps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from wire.errors import IdentityNotBound, KeyUnavailable
from wire.keys import KMS_PROVIDER, RSA_ALGORITHM, RSA_PROVIDER, WrappedKey, rsa_oaep_sha256

# KMS's answers when a wrapped key does not open under the context (or key) given: the record
# is not what it claims, and asking again will not change that.
REFUSED_CIPHERTEXT = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


def _bare_key_id(key_arn_or_id: str) -> str:
    """`arn:aws:kms:...:key/ID` -> `ID` (KMS and emulators differ in which one they return)."""
    return key_arn_or_id.rsplit("/", 1)[-1]


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".strip()
    return type(error).__name__


class KmsUnwrapper:
    """Recover data keys with kms:Decrypt: what the backend does with an event's envelope.

    `rsa_private_keys` maps RSA key ARNs to private keys for emulators whose Decrypt cannot
    take RSA ciphertext made outside them (moto): it stands in for KMS's RSA decryption.
    """

    def __init__(
        self,
        kms_client: Any,
        rsa_private_keys: Mapping[str, rsa.RSAPrivateKey] | None = None,
    ) -> None:
        self._kms = kms_client
        self._rsa_private_keys = {_bare_key_id(k): v for k, v in (rsa_private_keys or {}).items()}

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        try:
            if wrapped.provider == KMS_PROVIDER:
                reply = self._kms.decrypt(
                    CiphertextBlob=wrapped.wrapped_key,
                    KeyId=wrapped.key_arn,
                    EncryptionContext=dict(wrapped.encryption_context),
                )
                return bytes(reply["Plaintext"])
            if wrapped.provider == RSA_PROVIDER:
                private = self._rsa_private_keys.get(_bare_key_id(wrapped.key_arn))
                if private is not None:
                    return private.decrypt(wrapped.wrapped_key, rsa_oaep_sha256())
                reply = self._kms.decrypt(
                    CiphertextBlob=wrapped.wrapped_key,
                    KeyId=wrapped.key_arn,
                    EncryptionAlgorithm=RSA_ALGORITHM,
                )
                return bytes(reply["Plaintext"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in REFUSED_CIPHERTEXT:
                raise IdentityNotBound(
                    f"KMS refuses data key {wrapped.key_id} under the identity the record "
                    f"claims: {_describe(error)}"
                ) from error
            raise KeyUnavailable(
                f"cannot unwrap data key {wrapped.key_id}: {_describe(error)}"
            ) from error
        except (BotoCoreError, ValueError) as error:
            raise KeyUnavailable(
                f"cannot unwrap data key {wrapped.key_id}: {_describe(error)}"
            ) from error
        raise KeyUnavailable(f"data key {wrapped.key_id} has unknown provider {wrapped.provider!r}")
