"""What one side builds, the other reads back: the contract's round trip (property-based).

Records go through the terminal's real builder (`sync.events.EventBuilder`, which wraps
`wire.events.record_detail`) and come back through the consumer's readers
(`wire.events.parse_message`, `wire.opening`); side events through `wire.events`' builders
and the terminal's `sync.side_events.side_entry`.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.events import EventBuilder
from sync.outbox import Alarm, Checkpoint, OutboxRecord
from sync.side_events import SideOrigin, side_entry
from wire.envelope import GENESIS_CHAIN, KEY_BYTES, RecordIdentity, Sealer, wrapped_key_digest
from wire.errors import IdentityNotBound, MalformedMessage
from wire.events import (
    AlarmEvent,
    CheckpointEvent,
    Origin,
    RecordEvent,
    alarm_detail,
    checkpoint_detail,
    parse_message,
)
from wire.keys import WrappedKey, identity_context
from wire.opening import decrypt_event, wrapped_key_of

SOURCE, BUS = "posd.test", "bus-a"
ids = st.text(min_size=1, max_size=20)
seqs = st.integers(1, 2**53)
chains = st.binary(min_size=32, max_size=32).map(bytes.hex)
times = st.just("2026-11-25T12:00:00.123456Z")
meta_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=20)
)
event_ids = st.uuids().map(str)  # the contract's event ids are canonical UUIDs
origins = st.builds(Origin, event_id=event_ids, journal_id=ids, store_id=ids, terminal_id=ids)


class KeyRing:
    """Unwraps the keys it was given (a stand-in for KMS: the wrapping is not under test)."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        return self.keys[wrapped.key_id]


def delivered(detail_type: str, detail: str) -> str:
    """An SQS message body: the event as EventBridge hands it to its target."""
    return json.dumps({"detail-type": detail_type, "detail": json.loads(detail)})


@given(
    origin=origins,
    seq=seqs,
    kind=st.sampled_from(["payment.card", "payment.palm", "void"]),
    client_ref=st.one_of(st.none(), ids),
    meta=st.dictionaries(st.text(min_size=1, max_size=12), meta_values, max_size=6),
    context=st.one_of(st.none(), st.dictionaries(ids, ids, max_size=3)),
    secret=st.binary(max_size=512),
)
def test_a_record_reads_back_as_it_was_built(
    origin: Origin,
    seq: int,
    kind: str,
    client_ref: str | None,
    meta: dict[str, Any],
    context: dict[str, str] | None,
    secret: bytes,
) -> None:
    """None: the data key's context is the lane's own (what KMS binds); any other context
    names someone else, and the reader refuses the record before unwrapping its key."""
    claimed = identity_context(origin.store_id, origin.terminal_id)
    context = claimed if context is None else context
    plaintext = os.urandom(KEY_BYTES)
    arn = "arn:aws:kms:eu-west-1:1:key/k"
    key = WrappedKey("key-1", "kms", arn, "SYMMETRIC_DEFAULT", os.urandom(40), context)
    identity = RecordIdentity(
        seq=seq,
        event_id=origin.event_id,
        kind=kind,
        captured_at="2026-11-25T12:00:00.123456Z",
        client_ref=client_ref,
        store_id=origin.store_id,
        terminal_id=origin.terminal_id,
        meta=meta,
        data_key_id=key.key_id,
        wrapped_key_sha256=wrapped_key_digest(key.wrapped_key),
    )
    aad = identity.aad()
    nonce, ciphertext = Sealer(plaintext).seal(secret, aad)
    record = OutboxRecord(
        seq=seq,
        event_id=origin.event_id,
        kind=kind,
        captured_at=identity.captured_at,
        client_ref=client_ref,
        meta=meta,
        chain=GENESIS_CHAIN.hex(),
        nonce=nonce,
        ciphertext=ciphertext,
        aad=aad,
        data_key=key,
        attempts=0,
    )
    builder = EventBuilder(origin.store_id, origin.terminal_id, SOURCE, BUS, origin.journal_id)
    entry = builder.build(record).request_entry

    message = parse_message(delivered(entry["DetailType"], entry["Detail"]))

    assert isinstance(message, RecordEvent)
    assert (message.origin, message.seq) == (origin, seq)
    detail = message.event["detail"]
    assert (detail["kind"], detail["client_ref"], detail["meta"]) == (kind, client_ref, meta)
    assert detail["chain"] == record.chain
    assert wrapped_key_of(detail) == key
    ring = KeyRing()
    ring.keys[key.key_id] = plaintext
    if context == claimed:
        assert decrypt_event(message.event, ring) == secret
    else:
        with pytest.raises(IdentityNotBound):
            decrypt_event(message.event, ring)


alarms = st.builds(
    AlarmEvent,
    origin=origins,
    alarm=st.just("tampered_record"),
    seq=st.one_of(st.none(), seqs),
    detail=st.text(max_size=60),
    raised_at=times,
)


@st.composite
def checkpoints(draw: st.DrawFn) -> CheckpointEvent:
    first = draw(seqs)
    last = draw(st.integers(first, first + 10_000))
    return CheckpointEvent(
        origin=draw(origins),
        first_seq=first,
        last_seq=last,
        count=last - first + 1,
        chain_before=draw(chains),
        chain=draw(chains),
        created_at=draw(times),
    )


@given(alarm=alarms)
def test_an_alarm_reads_back_as_it_was_built(alarm: AlarmEvent) -> None:
    assert parse_message(json.dumps({"detail": alarm_detail(alarm)})) == alarm


@given(checkpoint=checkpoints())
def test_a_checkpoint_reads_back_as_it_was_built(checkpoint: CheckpointEvent) -> None:
    assert parse_message(json.dumps({"detail": checkpoint_detail(checkpoint)})) == checkpoint


@given(alarm=alarms.filter(lambda a: a.seq is not None), alarm_id=st.integers(1, 2**31))
def test_the_terminals_alarm_reads_back(alarm: AlarmEvent, alarm_id: int) -> None:
    """`sync.side_events` sends a journal's `Alarm` as the contract's alarm event."""
    assert alarm.seq is not None
    origin = alarm.origin
    side_origin = SideOrigin(SOURCE, BUS, origin.store_id, origin.terminal_id, origin.journal_id)
    journaled = Alarm(
        alarm_id, origin.event_id, alarm.alarm, alarm.seq, alarm.detail, alarm.raised_at
    )
    entry = side_entry(journaled, side_origin)
    assert parse_message(delivered(entry["DetailType"], entry["Detail"])) == alarm


@given(checkpoint=checkpoints(), checkpoint_id=st.integers(1, 2**31), now_journal=ids)
def test_the_terminals_checkpoint_reads_back(
    checkpoint: CheckpointEvent, checkpoint_id: int, now_journal: str
) -> None:
    """A checkpoint keeps the journal it was cut in, whatever the journal is now."""
    origin = checkpoint.origin
    side_origin = SideOrigin(SOURCE, BUS, origin.store_id, origin.terminal_id, now_journal)
    journaled = Checkpoint(
        checkpoint_id,
        origin.event_id,
        origin.journal_id,
        checkpoint.first_seq,
        checkpoint.last_seq,
        checkpoint.chain_before,
        checkpoint.chain,
        checkpoint.created_at,
    )
    entry = side_entry(journaled, side_origin)
    assert parse_message(delivered(entry["DetailType"], entry["Detail"])) == checkpoint


@given(
    event_id=st.one_of(
        st.text(max_size=40).filter(lambda text: not _is_canonical_uuid(text)),
        st.uuids().map(lambda value: str(value).upper()).filter(lambda text: text != text.lower()),
        st.just("p2pe-ksn#alias/posd-bdk#FFFF9876543210E00001"),
    ),
    checkpoint=checkpoints(),
)
def test_an_event_id_that_is_not_a_canonical_uuid_is_refused(
    event_id: str, checkpoint: CheckpointEvent
) -> None:
    """posd's event ids are UUIDv7 strings; anything else (such as the key of the consumer's
    own KSN claim) is refused before it can share a key with the consumer's items."""
    detail = checkpoint_detail(checkpoint) | {"event_id": event_id}
    with pytest.raises(MalformedMessage, match="event_id"):
        parse_message(json.dumps({"detail": detail}))


def _is_canonical_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
