"""Turns a captured secret into a sealed journal record: the one place capture encrypts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from posd.envelope import seal
from posd.journal import Journal
from posd.keys.base import DataKey
from sync.outbox import OutboxRecord


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

    def record(
        self,
        kind: str,
        meta: Mapping[str, Any],
        secret: bytes,
        client_ref: str | None = None,
    ) -> OutboxRecord:
        """Encrypt `secret` under the current data key and append it durably."""
        key = self._keys.key_for_record()
        return self.journal.append(
            kind=kind,
            meta=meta,
            store_id=self.store_id,
            terminal_id=self.terminal_id,
            data_key=key.wrapped,
            seal=lambda aad: seal(key.plaintext, secret, aad),
            client_ref=client_ref,
        )
