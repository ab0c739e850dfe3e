"""Builds the data-key provider that the config asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posd.config import Config
from posd.errors import ConfigError
from posd.keys.base import KeySource
from posd.keys.kms import KmsKeySource, KmsRsaOfflineSource
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from sync.clock import SYSTEM, Clock
from wire.keys import identity_context

OFFLINE_PUBLIC_KEY_CACHE = "kms-offline-public-key.json"


def encryption_context(config: Config) -> dict[str, str]:
    """The KMS encryption context of this terminal's data keys (IAM policies pin it)."""
    return identity_context(config.store_id, config.terminal_id)


def offline_cache_file(state_dir: Path) -> Path:
    return state_dir / OFFLINE_PUBLIC_KEY_CACHE


def build_key_provider(
    config: Config, kms_client: Any | None, clock: Clock = SYSTEM
) -> RotatingKeyProvider:
    keys = config.keys
    primary: KeySource
    fallback: KeySource | None = None
    hooks = []
    if keys.provider == "local":
        assert keys.local_key_file is not None  # checked by KeySettings
        primary = LocalKeySource(keys.local_key_file, create=True)
        fallback = primary  # local keys cost no network: never a reason to wait
    else:
        if kms_client is None or keys.kms_key_id is None:
            raise ConfigError(
                str(config.path), "keys.kms_key_id", "a KMS key and client are required"
            )
        primary = KmsKeySource(kms_client, keys.kms_key_id, encryption_context(config))
        if keys.offline_key_id:
            offline = KmsRsaOfflineSource(
                kms_client, keys.offline_key_id, offline_cache_file(config.state_dir)
            )
            fallback = offline
            hooks.append(offline.refresh_public_key)
    return RotatingKeyProvider(
        primary,
        fallback,
        rotate_after_records=keys.rotate_after_records,
        rotate_after_seconds=keys.rotate_after_seconds,
        after_primary_success=hooks,
        clock=clock.monotonic,
        real_seconds=clock.real_seconds,
    )
