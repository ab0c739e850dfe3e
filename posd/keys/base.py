"""The data-key interfaces.

A `KeySource` makes one new data key (it may talk to KMS, so it may be slow or fail). The
`RotatingKeyProvider` (in `provider.py`) owns rotation, background prefetch and the offline
fallback so that capture never waits on the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from wire.keys import WrappedKey


@dataclass(frozen=True)
class DataKey:
    """A data key: the wrapped form (stored) and the plaintext (memory only, never printed)."""

    wrapped: WrappedKey
    plaintext: bytes = field(repr=False)
    created_at: float

    @property
    def key_id(self) -> str:
        return self.wrapped.key_id

    def __str__(self) -> str:
        return f"DataKey({self.wrapped.provider}:{self.key_id})"


class KeySource(Protocol):
    """Makes new data keys."""

    name: str

    def new_data_key(self) -> DataKey: ...
