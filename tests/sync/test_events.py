"""Event building: the event shape of docs/event-format.md and AWS's request-size accounting."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.errors import EventBuildError
from sync.events import TIME_FIELD_BYTES, EventBuilder, entry_size
from sync.outbox import OutboxRecord
from wire.events import EVENT_SCHEMA
from wire.keys import WrappedKey

BUILDER = EventBuilder("store-1", "lane-2", "posd.test", "bus-a", "journal-1")


def _record(**changes: object) -> OutboxRecord:
    fields: dict[str, object] = {
        "seq": 7,
        "event_id": "0193a6f2-0000-7000-8000-000000000007",
        "kind": "payment.card",
        "captured_at": "2026-11-25T12:00:00.123456Z",
        "client_ref": "reg-1",
        "meta": {"amount": 1250, "currency": "EUR", "bin": "411111", "last4": "1111"},
        "chain": "ab" * 32,
        "nonce": b"\x01" * 12,
        "ciphertext": b"\x02" * 40,
        "aad": b'{"schema":"posd.record.v1"}',
        "data_key": WrappedKey(
            "k1",
            "kms",
            "arn:aws:kms:us-east-1:1:key/x",
            "SYMMETRIC_DEFAULT",
            b"\x03" * 8,
            {"store_id": "store-1", "terminal_id": "lane-2"},
        ),
        "attempts": 0,
    }
    fields.update(changes)
    return OutboxRecord(**fields)  # type: ignore[arg-type]


def test_entry_has_the_design_shape() -> None:
    entry = BUILDER.build(_record())
    request = entry.request_entry
    assert request["Source"] == "posd.test"
    assert request["DetailType"] == "payment.card"
    assert request["EventBusName"] == "bus-a"
    assert request["Time"] == datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
    detail = json.loads(request["Detail"])
    assert detail["schema"] == EVENT_SCHEMA
    assert (detail["event_id"], detail["seq"]) == ("0193a6f2-0000-7000-8000-000000000007", 7)
    assert (detail["store_id"], detail["terminal_id"]) == ("store-1", "lane-2")
    assert detail["journal_id"] == "journal-1"
    assert detail["meta"]["last4"] == "1111"
    assert detail["chain"] == "ab" * 32
    envelope = detail["envelope"]
    assert base64.b64decode(envelope["ciphertext"]) == b"\x02" * 40
    assert base64.b64decode(envelope["nonce"]) == b"\x01" * 12
    assert envelope["data_key"]["encryption_context"] == {
        "store_id": "store-1",
        "terminal_id": "lane-2",
    }
    assert envelope["data_key"]["key_arn"].startswith("arn:aws:kms:")


def test_same_record_same_bytes() -> None:
    assert (
        BUILDER.build(_record()).request_entry["Detail"]
        == BUILDER.build(_record()).request_entry["Detail"]
    )


@given(st.text(min_size=1, max_size=30), st.text(max_size=300))
def test_size_counts_utf8_bytes_plus_time(kind: str, note: str) -> None:
    entry = BUILDER.build(_record(kind=kind, meta={"note": note}))
    request = entry.request_entry
    expected = sum(len(request[k].encode()) for k in ("Source", "DetailType", "Detail"))
    assert entry.size == expected + TIME_FIELD_BYTES
    assert entry_size("é", "", "", has_time=False) == 2


def test_bad_capture_time_is_a_build_error() -> None:
    with pytest.raises(EventBuildError):
        BUILDER.build(_record(captured_at="yesterday"))
    with pytest.raises(EventBuildError):
        BUILDER.build(_record(captured_at="2026-11-25T12:00:00"))
