"""One EventBridge PutEvents entry per journal record.

The Detail is the contract's (`wire.events.record_detail`, documented for consumers in
docs/event-format.md); this module wraps it in a PutEvents entry and counts its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sync.errors import EventBuildError
from sync.eventbridge.v2 import system_metadata_bytes
from sync.outbox import OutboxRecord
from sync.timestamps import parse_rfc3339
from wire.events import data_key_detail, detail_json, meta_detail_json, record_detail_json
from wire.keys import WrappedKey

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

# PutEvents request-size accounting (AWS docs): UTF-8 bytes of Source + DetailType + Detail
# + each Resource, plus a fixed 14 bytes when Time is set.
TIME_FIELD_BYTES = 14


@dataclass(frozen=True)
class Entry:
    """A PutEvents request entry together with the record it came from and its size."""

    record: OutboxRecord
    request_entry: PutEventsRequestEntryTypeDef
    size: int


def parse_captured_at(text: str) -> datetime:
    """The capture time of a record as an aware datetime (EventBridge's `Time`)."""
    try:
        return parse_rfc3339(text)
    except ValueError as error:
        raise EventBuildError(f"captured_at is not RFC 3339: {text!r}") from error


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
    # count toward the request-size cap too (sync/eventbridge/client_v2.py adds them to each entry).
    event_group_id: str | None = None
    _last_key: tuple[WrappedKey, str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def _key_json(self, key: WrappedKey) -> str:
        if self._last_key is None or self._last_key[0] is not key:
            self._last_key = (key, detail_json(data_key_detail(key)))
        return self._last_key[1]

    def build(self, record: OutboxRecord) -> Entry:
        # The Detail's text is filled into its template (`wire.events.record_detail_json`),
        # the metadata's text taken as the outbox checked it: no object is built or encoded
        # per event (measured: bench/drain.py).
        if record.meta_json is None:
            meta = detail_json(dict(record.meta))
        else:
            meta = meta_detail_json(record.meta_json)
        detail = record_detail_json(
            record,
            self.store_id,
            self.terminal_id,
            self.journal_id,
            self._key_json(record.data_key),
            meta,
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
