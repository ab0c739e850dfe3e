"""`fresh_record` (a payment's append returns one) is the record `OutboxRecord(...)` makes:
equal, every field set, frozen as well."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.outbox import OutboxRecord, fresh_record
from wire.keys import WrappedKey

KEY = WrappedKey("key-1", "local", "arn:local", "AES-256-GCM", b"wrapped", {"purpose": "test"})
REQUIRED = {f.name for f in dataclasses.fields(OutboxRecord) if f.default is dataclasses.MISSING}


@given(
    seq=st.integers(min_value=1),
    event_id=st.text(),
    client_ref=st.none() | st.text(),
    meta=st.dictionaries(st.text(), st.integers() | st.text() | st.none()),
    nonce=st.binary(),
    meta_json=st.none() | st.text(),
)
def test_the_same_record_as_the_dataclass(
    seq: int,
    event_id: str,
    client_ref: str | None,
    meta: dict[str, Any],
    nonce: bytes,
    meta_json: str | None,
) -> None:
    values: dict[str, Any] = {
        "seq": seq,
        "event_id": event_id,
        "kind": "card_payment",
        "captured_at": "2026-12-07T20:00:00.000000Z",
        "client_ref": client_ref,
        "meta": meta,
        "chain": "00" * 32,
        "nonce": nonce,
        "ciphertext": b"sealed",
        "aad": b"{}",
        "data_key": KEY,
        "attempts": 0,
    }
    assert set(values) == REQUIRED
    for given_values in (values, {**values, "meta_json": meta_json}):
        made, expected = fresh_record(dict(given_values)), OutboxRecord(**given_values)
        assert made == expected
        assert vars(made) == vars(expected)
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.seq = 0  # type: ignore[misc]
