"""The key provider's settings (`[keys]` in config): the one place their defaults live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posd.typecheck import choice

KEY_PROVIDERS = ("kms", "local")
ROTATE_AFTER_RECORDS = 10_000
ROTATE_AFTER_SECONDS = 3_600.0


@dataclass(frozen=True)
class KeySettings:
    provider: str = "kms"
    kms_key_id: str | None = None
    # KMS RSA key (ENCRYPT_DECRYPT) whose public half wraps data keys while KMS is unreachable.
    offline_key_id: str | None = None
    # Development only: file holding a local key-encryption key (created if missing).
    local_key_file: Path | None = None
    rotate_after_records: int = ROTATE_AFTER_RECORDS
    rotate_after_seconds: float = ROTATE_AFTER_SECONDS

    def __post_init__(self) -> None:
        choice("provider", self.provider, KEY_PROVIDERS)
        if self.provider == "kms" and not self.kms_key_id:
            raise ValueError("kms_key_id: required when provider = 'kms'")
        if self.provider == "local" and self.local_key_file is None:
            raise ValueError("local_key_file: required when provider = 'local'")
        if self.rotate_after_records < 1:
            raise ValueError("rotate_after_records: must be >= 1")
        if self.rotate_after_seconds <= 0:
            raise ValueError("rotate_after_seconds: must be > 0")
