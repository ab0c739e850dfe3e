"""One EventBridge PutEvents entry per journal record.

The format is documented for consumers in docs/event-format.md; `EVENT_SCHEMA` changes
whenever a field changes meaning. Card data is only inside `envelope.ciphertext`.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sync.errors import EventBuildError
from sync.eventbridge.v2 import system_metadata_bytes
from sync.outbox import OutboxRecord, WrappedKey
from sync.timestamps import parse_rfc3339

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

EVENT_SCHEMA = "posd.event/1"
ENVELOPE_ALGORITHM = "AES-256-GCM"
# PutEvents request-size accounting (AWS docs): UTF-8 bytes of Source + DetailType + Detail
# + each Resource, plus a fixed 14 bytes when Time is set.
TIME_FIELD_BYTES = 14


@dataclass(frozen=True)
class Entry:
    """A PutEvents request entry together with the record it came from and its size."""

    record: OutboxRecord
    request_entry: PutEventsRequestEntryTypeDef
    size: int


def _b64(data: bytes) -> str:
    # binascii directly: base64.b64encode adds a Python call and a type check per field, on
    # four fields of every event (measured: bench/drain.py --profile).
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def detail_json(value: Any) -> str:
    """Compact, key-sorted JSON text, non-ASCII kept as UTF-8: the same record always yields
    the same Detail bytes, and sizes count as AWS counts them (UTF-8 bytes).

    Not the envelope's AAD encoding (`posd.envelope.canonical_ascii_json`, ASCII escapes):
    the AAD travels base64-encoded inside the Detail, so the two never need to agree."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_captured_at(text: str) -> datetime:
    """The capture time of a record as an aware datetime (EventBridge's `Time`)."""
    try:
        return parse_rfc3339(text)
    except ValueError as error:
        raise EventBuildError(f"captured_at is not RFC 3339: {text!r}") from error


def data_key_detail(key: WrappedKey) -> dict[str, Any]:
    """The `envelope.data_key` object of an event."""
    return {
        "key_id": key.key_id,
        "provider": key.provider,
        "key_arn": key.key_arn,
        "algorithm": key.algorithm,
        "wrapped_key": _b64(key.wrapped_key),
        "encryption_context": dict(key.encryption_context),
    }


def build_detail(
    record: OutboxRecord,
    store_id: str,
    terminal_id: str,
    journal_id: str,
    key_detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `Detail` object of a record's event; `key_detail`: `data_key_detail` of the
    record's data key, if the caller has it already."""
    return {
        "schema": EVENT_SCHEMA,
        "event_id": record.event_id,
        "seq": record.seq,
        "journal_id": journal_id,
        "store_id": store_id,
        "terminal_id": terminal_id,
        "kind": record.kind,
        "captured_at": record.captured_at,
        "client_ref": record.client_ref,
        "meta": dict(record.meta),
        "chain": record.chain,
        "envelope": {
            "algorithm": ENVELOPE_ALGORITHM,
            "nonce": _b64(record.nonce),
            "ciphertext": _b64(record.ciphertext),
            "aad": _b64(record.aad),
            "data_key": data_key_detail(record.data_key) if key_detail is None else key_detail,
        },
    }


def entry_size(source: str, detail_type: str, detail: str, has_time: bool = True) -> int:
    """Bytes this entry counts toward the PutEvents request-size cap."""
    # The Detail is long and nearly always ASCII: then its length is its UTF-8 byte count,
    # no need to encode it.
    detail_bytes = len(detail) if detail.isascii() else len(detail.encode())
    size = len(source.encode()) + len(detail_type.encode()) + detail_bytes
    return size + (TIME_FIELD_BYTES if has_time else 0)


@dataclass
class EventBuilder:
    """Turns records into entries for one terminal and one bus.

    Consecutive records mostly share one data key: its part of the Detail is built once and
    reused while the key stays the same object (the outbox hands out one object per stored
    key; a different object, even an equal one, is simply built again)."""

    store_id: str
    terminal_id: str
    source: str
    event_bus_name: str
    journal_id: str
    # With api = "v2": the terminal's EventGroupId, whose bytes (and the deduplication id's)
    # count toward the request-size cap too (sync/client_v2.py adds them to each entry).
    event_group_id: str | None = None
    _last_key: tuple[WrappedKey, dict[str, Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def _key_detail(self, key: WrappedKey) -> dict[str, Any]:
        if self._last_key is None or self._last_key[0] is not key:
            self._last_key = (key, data_key_detail(key))
        return self._last_key[1]

    def build(self, record: OutboxRecord) -> Entry:
        detail = detail_json(
            build_detail(
                record,
                self.store_id,
                self.terminal_id,
                self.journal_id,
                self._key_detail(record.data_key),
            )
        )
        request_entry: PutEventsRequestEntryTypeDef = {
            "Source": self.source,
            "DetailType": record.kind,
            "Detail": detail,
            "Time": parse_captured_at(record.captured_at),
            "EventBusName": self.event_bus_name,
        }
        size = entry_size(self.source, record.kind, detail)
        if self.event_group_id is not None:
            size += system_metadata_bytes(record.event_id, self.event_group_id)
        return Entry(record, request_entry, size)
