"""The Detail of every event a terminal sends, built and read side by side.

Three kinds travel (docs/event-format.md): a journal record (`posd.event/1`, DetailType the
record's kind), an alarm (`posd.alarm/1`) and a checkpoint (`posd.checkpoint/1`). The
terminal builds each Detail with the `*_detail` functions; a consumer reads any of them back
with `parse_message`. `EVENT_SCHEMA` changes whenever a field changes meaning. Card data is
only inside `envelope.ciphertext`; opening it is `wire.opening`'s job.

Reading checks only the fields needed to file a message (its id, its journal and seq or
range); a message without them can never be processed and is `MalformedMessage`. Whether a
record's envelope is genuine is `wire.opening`'s question, not this module's.
"""

from __future__ import annotations

import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from wire.envelope import ALGORITHM
from wire.errors import MalformedMessage, WireError
from wire.keys import WrappedKey
from wire.templates import JsonTemplate, encode_string, hole

EVENT_SCHEMA = "posd.event/1"
ALARM_SCHEMA = "posd.alarm/1"
ALARM_DETAIL_TYPE = "posd.alarm"
CHECKPOINT_SCHEMA = "posd.checkpoint/1"
CHECKPOINT_DETAIL_TYPE = "posd.checkpoint"
SIDE_DETAIL_TYPES = frozenset({ALARM_DETAIL_TYPE, CHECKPOINT_DETAIL_TYPE})
# The alarm a terminal raises for a record that failed its own integrity check.
TAMPERED_RECORD_ALARM = "tampered_record"
CHAIN_HEX_CHARS = 64
HEX_DIGITS = frozenset("0123456789abcdef")


def detail_json(value: Any) -> str:
    """Compact, key-sorted JSON text, non-ASCII kept as UTF-8: the same record always yields
    the same Detail bytes, and sizes count as AWS counts them (UTF-8 bytes).

    Not the envelope's AAD encoding (`wire.envelope.canonical_ascii_json`, ASCII escapes):
    the AAD travels base64-encoded inside the Detail, so the two never need to agree."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def b64decode_strict(text: Any, what: str, error: type[WireError]) -> bytes:
    """Strict base64 of a field a peer sent; `error` (naming `what`) when it is not."""
    if not isinstance(text, str):
        raise error(f"{what} is not a base64 string")
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as cause:
        raise error(f"{what} is not valid base64") from cause


def b64encode(data: bytes) -> str:
    # binascii directly: base64.b64encode adds a Python call and a type check per field, on
    # four fields of every event (measured: bench/drain.py --profile).
    return binascii.b2a_base64(data, newline=False).decode("ascii")


@dataclass(frozen=True)
class Origin:
    """Which terminal and journal an event speaks for, and its own id (the dedupe key)."""

    event_id: str
    journal_id: str
    store_id: str
    terminal_id: str


# -- a journal record (`posd.event/1`) ------------------------------------------------------


class SealedRecord(Protocol):
    """What a record's event is built from (the terminal's `sync.outbox.OutboxRecord`)."""

    @property
    def seq(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def captured_at(self) -> str: ...  # RFC 3339, UTC
    @property
    def client_ref(self) -> str | None: ...
    @property
    def meta(self) -> Mapping[str, Any]: ...
    @property
    def chain(self) -> str: ...  # hex SHA-256
    @property
    def nonce(self) -> bytes: ...
    @property
    def ciphertext(self) -> bytes: ...
    @property
    def aad(self) -> bytes: ...  # the exact associated data the ciphertext was sealed with
    @property
    def data_key(self) -> WrappedKey: ...


def data_key_detail(key: WrappedKey) -> dict[str, Any]:
    """The `envelope.data_key` object of an event (read back by `wire.opening.wrapped_key_of`)."""
    return {
        "key_id": key.key_id,
        "provider": key.provider,
        "key_arn": key.key_arn,
        "algorithm": key.algorithm,
        "wrapped_key": b64encode(key.wrapped_key),
        "encryption_context": dict(key.encryption_context),
    }


def record_detail(
    record: SealedRecord,
    store_id: str,
    terminal_id: str,
    journal_id: str,
    key_detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `Detail` object of a record's event; `key_detail`: `data_key_detail` of the
    record's data key, if the caller has it already."""
    values: dict[str, Any] = {name: getattr(record, name) for name in _RECORD_FIELDS}
    values["meta"] = dict(record.meta)
    values["nonce"] = b64encode(record.nonce)
    values["ciphertext"] = b64encode(record.ciphertext)
    values["aad"] = b64encode(record.aad)
    values["data_key"] = data_key_detail(record.data_key) if key_detail is None else key_detail
    values.update(store_id=store_id, terminal_id=terminal_id, journal_id=journal_id)
    return _detail(values)


_RECORD_FIELDS = ("event_id", "seq", "kind", "captured_at", "client_ref", "chain")
# The Detail's values, in the order of its text (sorted keys), `record_detail_json` fills.
_DETAIL_FIELDS = (
    *("captured_at", "chain", "client_ref", "aad", "ciphertext", "data_key", "nonce"),
    *("event_id", "journal_id", "kind", "meta", "seq", "store_id", "terminal_id"),
)


def _detail(values: dict[str, Any]) -> dict[str, Any]:
    """The Detail object (`values`: one per `_DETAIL_FIELDS` name)."""
    return {
        "schema": EVENT_SCHEMA,
        "event_id": values["event_id"],
        "seq": values["seq"],
        "journal_id": values["journal_id"],
        "store_id": values["store_id"],
        "terminal_id": values["terminal_id"],
        "kind": values["kind"],
        "captured_at": values["captured_at"],
        "client_ref": values["client_ref"],
        "meta": values["meta"],
        "chain": values["chain"],
        "envelope": {
            "algorithm": ALGORITHM,
            "nonce": values["nonce"],
            "ciphertext": values["ciphertext"],
            "aad": values["aad"],
            "data_key": values["data_key"],
        },
    }


_DETAIL_TEMPLATE = JsonTemplate(
    detail_json, _detail({name: hole(name) for name in _DETAIL_FIELDS}), _DETAIL_FIELDS
)


def meta_detail_json(meta_json: str) -> str:
    """The Detail's text of a record's metadata, from its canonical ASCII JSON (as sealed in
    the AAD): the same text unless it escapes a character (the Detail keeps UTF-8)."""
    if "\\u" not in meta_json:
        return meta_json
    return detail_json(json.loads(meta_json))


def record_detail_json(
    record: SealedRecord,
    store_id: str,
    terminal_id: str,
    journal_id: str,
    key_json: str,
    meta_json: str,
) -> str:
    """`detail_json(record_detail(...))`, byte for byte, without building or encoding the
    object: `key_json` is `detail_json` of the data key's part, `meta_json` the Detail's text
    of the metadata (`meta_detail_json`)."""
    client_ref = record.client_ref
    texts = (
        encode_string(record.captured_at),
        encode_string(record.chain),
        "null" if client_ref is None else encode_string(client_ref),
        '"' + b64encode(record.aad) + '"',
        '"' + b64encode(record.ciphertext) + '"',
        key_json,
        '"' + b64encode(record.nonce) + '"',
        encode_string(record.event_id),
        encode_string(journal_id),
        encode_string(record.kind),
        meta_json,
        int.__repr__(record.seq),
        encode_string(store_id),
        encode_string(terminal_id),
    )
    return _DETAIL_TEMPLATE.fill(texts)


@dataclass(frozen=True)
class RecordEvent:
    origin: Origin
    seq: int
    event: dict[str, Any]  # the whole EventBridge event, as delivered


# -- side events: an alarm (`posd.alarm/1`) and a checkpoint (`posd.checkpoint/1`) ----------


@dataclass(frozen=True)
class AlarmEvent:
    """A record that failed its integrity check on the terminal, by seq and what failed."""

    origin: Origin
    alarm: str
    seq: int | None
    detail: str
    raised_at: str
    # the Detail as received (with its `signature`), for the reader to verify; empty when built
    signed: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class CheckpointEvent:
    """The journal's statement about seqs `first_seq`..`last_seq` (docs: "Checkpoints")."""

    origin: Origin
    first_seq: int
    last_seq: int
    count: int
    chain_before: str
    chain: str
    created_at: str
    # the Detail as received (with its `signature`), for the reader to verify; empty when built
    signed: Mapping[str, Any] = field(default_factory=dict, compare=False)


def alarm_detail(alarm: AlarmEvent) -> dict[str, Any]:
    """The `posd.alarm/1` detail (docs/event-format.md, "Alarms")."""
    return {
        "schema": ALARM_SCHEMA,
        "event_id": alarm.origin.event_id,
        "journal_id": alarm.origin.journal_id,
        "store_id": alarm.origin.store_id,
        "terminal_id": alarm.origin.terminal_id,
        "alarm": alarm.alarm,
        "seq": alarm.seq,
        "detail": alarm.detail,
        "raised_at": alarm.raised_at,
    }


def checkpoint_detail(checkpoint: CheckpointEvent) -> dict[str, Any]:
    """The `posd.checkpoint/1` detail (docs/event-format.md, "Checkpoints")."""
    return {
        "schema": CHECKPOINT_SCHEMA,
        "event_id": checkpoint.origin.event_id,
        "journal_id": checkpoint.origin.journal_id,
        "store_id": checkpoint.origin.store_id,
        "terminal_id": checkpoint.origin.terminal_id,
        "first_seq": checkpoint.first_seq,
        "last_seq": checkpoint.last_seq,
        "count": checkpoint.count,
        "chain_before": checkpoint.chain_before,
        "chain": checkpoint.chain,
        "created_at": checkpoint.created_at,
    }


# -- reading any of them ----------------------------------------------------------------------

Message = RecordEvent | CheckpointEvent | AlarmEvent


def _field(detail: dict[str, Any], name: str, kind: type) -> Any:
    value = detail.get(name)
    # bool is an int to Python, never a seq to us
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise MalformedMessage(f"detail.{name} is missing or not a {kind.__name__}")
    return value


def _chain(detail: dict[str, Any], name: str) -> str:
    value: str = _field(detail, name, str)
    if len(value) != CHAIN_HEX_CHARS or any(c not in HEX_DIGITS for c in value):
        raise MalformedMessage(f"detail.{name} is not a hex SHA-256")
    return value


def _event_id(detail: dict[str, Any]) -> str:
    """A canonical UUID string (posd sends UUIDv7): nothing else can share a key with the
    consumer's own items in the events table (a P2PE KSN claim, `cloud.ksns`)."""
    value: str = _field(detail, "event_id", str)
    try:
        canonical: str | None = str(uuid.UUID(value))
    except ValueError:
        canonical = None
    if canonical != value:
        raise MalformedMessage("detail.event_id is not a canonical UUID")
    return value


def _origin(detail: dict[str, Any]) -> Origin:
    return Origin(
        event_id=_event_id(detail),
        journal_id=_field(detail, "journal_id", str),
        store_id=_field(detail, "store_id", str),
        terminal_id=_field(detail, "terminal_id", str),
    )


def parse_message(body: str) -> Message:
    """The posd event in an SQS message body (an EventBridge event as its target gets it)."""
    try:
        event = json.loads(body)
    except ValueError as error:
        raise MalformedMessage("the message body is not JSON") from error
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        raise MalformedMessage("the message is not an EventBridge event with a detail")
    schema = detail.get("schema")
    if schema == EVENT_SCHEMA:
        return RecordEvent(_origin(detail), _field(detail, "seq", int), event)
    if schema == CHECKPOINT_SCHEMA:
        first, last = _field(detail, "first_seq", int), _field(detail, "last_seq", int)
        if not 1 <= first <= last:
            raise MalformedMessage(f"checkpoint range {first}..{last} is empty")
        return CheckpointEvent(
            _origin(detail),
            first,
            last,
            _field(detail, "count", int),
            _chain(detail, "chain_before"),
            _chain(detail, "chain"),
            _field(detail, "created_at", str),
            detail,
        )
    if schema == ALARM_SCHEMA:
        seq = detail.get("seq")
        return AlarmEvent(
            _origin(detail),
            _field(detail, "alarm", str),
            seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            str(detail.get("detail", "")),
            str(detail.get("raised_at", "")),
            detail,
        )
    raise MalformedMessage(f"unknown detail schema {schema!r}")
