"""KMS-backed key sources: new data keys, wrapped, for the journal.

- `KmsKeySource`: `GenerateDataKey` (AES_256) under a symmetric KMS key, with an encryption
  context naming the store and terminal. Only `CiphertextBlob` is stored.
- `KmsRsaOfflineSource`: for when KMS cannot be reached. A random AES key is wrapped locally
  with the public half of a KMS RSA key (RSAES_OAEP_SHA_256). The public key is fetched with
  `GetPublicKey` while online and cached in the state dir, so this works after a restart too.
  Only `kms:Decrypt` on that RSA key (which the terminal does not have) recovers the data key.

The reverse, for holders of `kms:Decrypt`, is the cloud's (`cloud.kms.KmsUnwrapper`): a
terminal never unwraps.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from posd.errors import KeyProviderError
from posd.keys.base import DataKey
from posd.keys.owned import read_own_private
from wire.envelope import KEY_BYTES
from wire.keys import (
    KMS_ALGORITHM,
    KMS_PROVIDER,
    RSA_ALGORITHM,
    RSA_PROVIDER,
    WrappedKey,
    rsa_oaep_sha256,
)

PUBLIC_KEY_CACHE_MODE = 0o600


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".strip()
    return type(error).__name__


class KmsKeySource:
    """New data keys from KMS GenerateDataKey."""

    name = KMS_PROVIDER

    def __init__(self, kms_client: Any, key_id: str, encryption_context: Mapping[str, str]) -> None:
        self._kms = kms_client
        self._key_id = key_id
        self._context = dict(encryption_context)

    def new_data_key(self) -> DataKey:
        try:
            reply = self._kms.generate_data_key(
                KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=self._context
            )
        except (BotoCoreError, ClientError) as error:
            raise KeyProviderError(f"KMS GenerateDataKey failed: {_describe(error)}") from error
        wrapped = WrappedKey(
            key_id=str(uuid.uuid4()),
            provider=KMS_PROVIDER,
            key_arn=reply["KeyId"],
            algorithm=KMS_ALGORITHM,
            wrapped_key=reply["CiphertextBlob"],
            encryption_context=dict(self._context),
        )
        return DataKey(wrapped=wrapped, plaintext=reply["Plaintext"], created_at=time.time())


class KmsRsaOfflineSource:
    """Data keys wrapped locally with a cached KMS RSA public key: no network at capture."""

    name = RSA_PROVIDER

    def __init__(self, kms_client: Any | None, key_id: str, cache_file: Path) -> None:
        self._kms = kms_client
        self._key_id = key_id
        self._cache_file = cache_file
        self._public: tuple[str, rsa.RSAPublicKey] | None = None

    def refresh_public_key(self) -> None:
        """Fetch the RSA public key from KMS and cache it on disk (atomic replace)."""
        if self._kms is None:
            raise KeyProviderError("no KMS client to fetch the offline public key with")
        try:
            reply = self._kms.get_public_key(KeyId=self._key_id)
        except (BotoCoreError, ClientError) as error:
            raise KeyProviderError(f"KMS GetPublicKey failed: {_describe(error)}") from error
        if RSA_ALGORITHM not in reply.get("EncryptionAlgorithms", []):
            raise KeyProviderError(f"offline key {self._key_id} does not support {RSA_ALGORITHM}")
        document = {
            "key_arn": reply["KeyId"],
            "public_key_der": base64.b64encode(reply["PublicKey"]).decode(),
            "fetched_at": time.time(),
        }
        tmp = self._cache_file.with_suffix(".tmp")
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PUBLIC_KEY_CACHE_MODE)
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._cache_file)
        except OSError as error:
            raise KeyProviderError(
                f"cannot cache the offline public key in {self._cache_file}: {error.strerror}"
            ) from error
        self._public = None

    def _load_public_key(self) -> tuple[str, rsa.RSAPublicKey]:
        if self._public is None:
            try:
                # Capture's own file only: delivery shares the state dir (owned.py).
                document = json.loads(read_own_private(self._cache_file))
                key = serialization.load_der_public_key(
                    base64.b64decode(document["public_key_der"])
                )
            except (FileNotFoundError, ValueError, KeyError) as error:
                raise KeyProviderError(
                    f"no usable cached offline public key at {self._cache_file}; "
                    "it is fetched from KMS the first time the terminal is online"
                ) from error
            if not isinstance(key, rsa.RSAPublicKey):
                raise KeyProviderError(f"cached offline key in {self._cache_file} is not RSA")
            self._public = (str(document["key_arn"]), key)
        return self._public

    def new_data_key(self) -> DataKey:
        key_arn, public_key = self._load_public_key()
        plaintext = os.urandom(KEY_BYTES)
        wrapped = WrappedKey(
            key_id=str(uuid.uuid4()),
            provider=RSA_PROVIDER,
            key_arn=key_arn,
            algorithm=RSA_ALGORITHM,
            wrapped_key=public_key.encrypt(plaintext, rsa_oaep_sha256()),
        )
        return DataKey(wrapped=wrapped, plaintext=plaintext, created_at=time.time())
