"""Turns a captured secret into a sealed journal record: the one place capture encrypts."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Protocol

from posd.errors import UsageError
from posd.journal import MAX_SECRET_BYTES, Journal
from posd.keys.base import DataKey
from sync.outbox import OutboxRecord
from wire.envelope import Sealer


class DataKeyProvider(Protocol):
    def key_for_record(self) -> DataKey: ...


class Recorder:
    def __init__(
        self, journal: Journal, keys: DataKeyProvider, store_id: str, terminal_id: str
    ) -> None:
        self.journal = journal
        self._keys = keys
        self.store_id = store_id
        self.terminal_id = terminal_id
        self._sealer: tuple[DataKey, Sealer] | None = None

    def record(
        self,
        kind: str,
        meta: Mapping[str, Any],
        secret: bytes,
        client_ref: str | None = None,
    ) -> OutboxRecord:
        """Encrypt `secret` under the current data key and append it durably."""
        if len(secret) > MAX_SECRET_BYTES:
            raise UsageError(f"sensitive payload is larger than {MAX_SECRET_BYTES} bytes")
        key = self._keys.key_for_record()
        # One (key, sealer) tuple, read and replaced whole: safe across capture threads. The
        # provider hands out one object per key: compared by identity, no property call.
        cached = self._sealer
        if cached is None or cached[0] is not key:
            cached = self._sealer = (key, Sealer(key.plaintext))
        sealer = cached[1]
        return self.journal.append(
            kind=kind,
            meta=meta,
            store_id=self.store_id,
            terminal_id=self.terminal_id,
            data_key=key.wrapped,
            seal=partial(sealer.seal, secret),  # made in C, called without a Python frame
            client_ref=client_ref,
        )
