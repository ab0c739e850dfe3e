"""What a queue message holds: a posd record, checkpoint or alarm event, or poison.

Only the fields needed to file a message are checked here (its id, its journal and seq or
range); a message without them can never be processed and is `MalformedMessage`. Whether a
record's envelope is genuine is `cloud.receiving`'s question, not this module's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cloud.errors import MalformedMessage
from sync.events import EVENT_SCHEMA

# The side events' schemas as docs/event-format.md names them: the consumer's contract is the
# document (a test holds these to it), not where the terminal's code keeps its constants.
ALARM_SCHEMA = "posd.alarm/1"
ALARM_DETAIL_TYPE = "posd.alarm"
CHECKPOINT_SCHEMA = "posd.checkpoint/1"
CHECKPOINT_DETAIL_TYPE = "posd.checkpoint"
TAMPERED_RECORD_ALARM = "tampered_record"
CHAIN_HEX_CHARS = 64
HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Origin:
    """Which terminal and journal a message speaks for."""

    event_id: str
    journal_id: str
    store_id: str
    terminal_id: str


@dataclass(frozen=True)
class RecordEvent:
    origin: Origin
    seq: int
    event: dict[str, Any]  # the whole EventBridge event, as delivered


@dataclass(frozen=True)
class CheckpointEvent:
    origin: Origin
    first_seq: int
    last_seq: int
    count: int
    chain_before: str
    chain: str
    created_at: str


@dataclass(frozen=True)
class AlarmEvent:
    origin: Origin
    alarm: str
    seq: int | None
    detail: str
    raised_at: str


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


def _origin(detail: dict[str, Any]) -> Origin:
    return Origin(
        event_id=_field(detail, "event_id", str),
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
        )
    if schema == ALARM_SCHEMA:
        seq = detail.get("seq")
        return AlarmEvent(
            _origin(detail),
            _field(detail, "alarm", str),
            seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            str(detail.get("detail", "")),
            str(detail.get("raised_at", "")),
        )
    raise MalformedMessage(f"unknown detail schema {schema!r}")
