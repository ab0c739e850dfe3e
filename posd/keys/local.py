"""Development-only key source: data keys wrapped by a key-encryption key in a local file.

The file holds 32 random bytes (base64), mode 0600. The daemon refuses this provider in
production mode; it exists so the demo and development can run without KMS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from posd.errors import KeyProviderError
from posd.keys.base import DataKey
from wire.envelope import KEY_BYTES, NONCE_BYTES
from wire.keys import WrappedKey

PROVIDER = "local"
ALGORITHM = "AES-256-GCM-KEYWRAP"
_WRAP_AAD = b"posd-local-data-key"
KEY_FILE_MODE = 0o600


def create_key_file(path: Path) -> None:
    """Write a new random key-encryption key, private to the owner. Never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")


def read_key_file(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise KeyProviderError(f"cannot read local key file {path}: {error.strerror}") from error
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except binascii.Error as error:
        raise KeyProviderError(f"local key file {path} is not base64") from error
    if len(key) != KEY_BYTES:
        raise KeyProviderError(f"local key file {path} must hold {KEY_BYTES} bytes, base64")
    return key


class LocalKeySource:
    """Data keys wrapped with AES-256-GCM under the key in `key_file`."""

    name = PROVIDER

    def __init__(self, key_file: Path, *, create: bool = False) -> None:
        if create and not key_file.exists():
            create_key_file(key_file)
        self._kek = read_key_file(key_file)
        self.key_arn = "local:" + hashlib.sha256(self._kek).hexdigest()[:16]

    def new_data_key(self) -> DataKey:
        plaintext = os.urandom(KEY_BYTES)
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + AESGCM(self._kek).encrypt(nonce, plaintext, _WRAP_AAD)
        info = WrappedKey(
            key_id=str(uuid.uuid4()),
            provider=PROVIDER,
            key_arn=self.key_arn,
            algorithm=ALGORITHM,
            wrapped_key=wrapped,
        )
        return DataKey(wrapped=info, plaintext=plaintext, created_at=time.time())

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        if wrapped.key_arn != self.key_arn:
            raise KeyProviderError(f"data key {wrapped.key_id} was wrapped by another local key")
        nonce, body = wrapped.wrapped_key[:NONCE_BYTES], wrapped.wrapped_key[NONCE_BYTES:]
        try:
            return AESGCM(self._kek).decrypt(nonce, body, _WRAP_AAD)
        except InvalidTag as error:
            raise KeyProviderError(f"data key {wrapped.key_id} does not unwrap") from error
