"""What the sync engine needs from a journal, stated as a Protocol.

`sync` never imports `posd`; the daemon's journal satisfies `Outbox` structurally and hands
the engine `OutboxRecord`s, which carry everything needed to build one EventBridge entry.
Card data is only inside `ciphertext`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from functools import cached_property
from typing import Any, Protocol

from wire.keys import WrappedKey


@dataclass(frozen=True)
class OutboxRecord:
    """One journal record ready to be delivered."""

    seq: int
    event_id: str
    kind: str
    captured_at: str  # RFC 3339, UTC, e.g. 2026-11-25T12:00:00.123456Z
    client_ref: str | None
    meta: Mapping[str, Any]
    chain: str  # hex SHA-256
    nonce: bytes
    ciphertext: bytes
    aad: bytes  # the exact associated data the ciphertext was sealed with
    data_key: WrappedKey
    attempts: int
    # The metadata's canonical ASCII JSON, exactly as sealed in the AAD, when the outbox
    # checked it so: the Detail then takes the text as it is (`wire.events.meta_detail_json`).
    meta_json: str | None = None


_RECORD_DEFAULTS = {f.name: f.default for f in fields(OutboxRecord) if f.default is not MISSING}


def fresh_record(values: dict[str, Any]) -> OutboxRecord:
    """`OutboxRecord(**values)`, made on every payment's path: the frozen dataclass's
    `__init__` sets each field with its own `object.__setattr__` call, this fills the new
    instance's dict at once, from a dict the caller made (a dict display, not keywords: no
    dict made twice). Every field without a default must be given (the same record:
    tests/sync/test_fresh_record.py)."""
    record = object.__new__(OutboxRecord)
    fields_of = record.__dict__
    fields_of.update(_RECORD_DEFAULTS)
    fields_of.update(values)
    return record


class JsonObject(Mapping[str, Any]):
    """A JSON object's text, parsed the first time a value is asked for: a record whose
    Detail is built from `OutboxRecord.meta_json` never pays for parsing its metadata."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def _parsed(self) -> dict[str, Any]:
        value = json.loads(self.text)
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value

    def __getitem__(self, key: str) -> Any:
        return self._parsed[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed)

    def __len__(self) -> int:
        return len(self._parsed)

    def __repr__(self) -> str:
        return f"JsonObject({self.text!r})"


@dataclass(frozen=True)
class Delivered:
    """A record that EventBridge accepted, with the event id it returned."""

    seq: int
    remote_event_id: str


@dataclass(frozen=True)
class OutboxSummary:
    pending: int
    quarantined: int
    delivered: int
    oldest_pending_captured_at: str | None
    pending_amount_by_currency: Mapping[str, int]
    tampered: int = 0  # of the quarantined: failed their integrity check (an alarm)
    unreadable: int = 0  # rows the journal could not read at all (a damaged file)


@dataclass(frozen=True)
class Quarantined:
    """A record the outbox took out of delivery itself, while leasing, and why.

    `reason` starts with `tampered:` when the record failed its own integrity check (chain
    link or AAD digest): that one raises an alarm, it is never forwarded.
    """

    seq: int
    reason: str

    @property
    def tampered(self) -> bool:
        return self.reason.startswith(TAMPERED_PREFIX)


TAMPERED_PREFIX = "tampered:"


@dataclass(frozen=True)
class Alarm:
    """Something the cloud must hear about that is not a record: a record that failed its
    integrity check (`wire.events.TAMPERED_RECORD_ALARM`), by seq and what failed. Never any
    payload."""

    alarm_id: int
    event_id: str  # stable: consumers dedupe alarms like events
    kind: str
    seq: int
    detail: str
    raised_at: str  # RFC 3339 UTC


@dataclass(frozen=True)
class Checkpoint:
    """The journal's statement about a range of its records: seqs `first_seq`..`last_seq`
    (inclusive) were issued, and the chain runs from `chain_before` (the value after
    `first_seq - 1`) to `chain` (the value at `last_seq`). Ranges of one journal are
    contiguous. Numbers and hashes only: no record content."""

    checkpoint_id: int
    event_id: str  # the checkpoint's own id: consumers dedupe it like an event
    journal_id: str
    first_seq: int
    last_seq: int
    chain_before: str  # hex SHA-256
    chain: str  # hex SHA-256
    created_at: str  # RFC 3339 UTC

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1


SideEvent = Alarm | Checkpoint
"""What travels in the side lane, beside the records: small, journaled, sent until accepted."""


@dataclass(frozen=True)
class Lease:
    """What one `lease` call hands out, and what it refused to hand out."""

    records: Sequence[OutboxRecord]
    quarantined: Sequence[Quarantined] = ()


class Outbox(Protocol):
    """The journal operations the engine uses. All times are UNIX seconds (float)."""

    @property
    def journal_id(self) -> str:
        """The journal's identity, carried in every event (changes only on a reset)."""
        ...

    def lease(self, limit: int, now: float, lease_seconds: float) -> Lease:
        """Pending records due at `now`, in seq order, hidden from other leases for a while;
        records that cannot be read or fail their integrity check are quarantined instead."""
        ...

    def mark_delivered(self, delivered: Sequence[Delivered], now: float) -> None:
        """Mark records delivered, in one short transaction."""
        ...

    def schedule_retry(self, seqs: Sequence[int], next_attempt_at: float, error: str) -> None:
        """Return records to pending, due again at `next_attempt_at`, noting the error."""
        ...

    def quarantine(self, seq: int, reason: str) -> None:
        """Take a record out of delivery for good (until an operator retries it)."""
        ...

    def summary(self) -> OutboxSummary:
        """Counts for status displays."""
        ...

    def pending_side_events(self, limit: int) -> Sequence[SideEvent]:
        """Side events not yet accepted by EventBridge: alarms first, then checkpoints, each
        oldest first."""
        ...

    def mark_side_events_sent(self, events: Sequence[SideEvent], now: float) -> None:
        """EventBridge accepted these side events."""
        ...

    def cut_checkpoint(self, now: float, force: bool = False) -> bool:
        """Journal a checkpoint over the records appended since the last one if the
        checkpoint timer ran out (or `force`) and there are any (never an empty one); True if
        one was cut. Cheap when it is not due: the engine calls it every round."""
        ...

    def purge_delivered(self, delivered_before: float, through_seq: int | None = None) -> int:
        """Delete records delivered before `delivered_before` (and, with `through_seq`, at or
        below that seq); return how many went."""
        ...

    def release_leases(self) -> int:
        """Make every leased pending record due again at once (an engine that stops hands its
        leases back); return how many."""
        ...
