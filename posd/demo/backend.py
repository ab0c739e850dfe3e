"""The receiving side, as the backend runs it: route the bus to a queue, read, decrypt.

posd itself never decrypts (a terminal's role has no `kms:Decrypt`); this module is what
`posd demo` and the tests use to play the backend, and a reference for consumers. It follows
docs/event-format.md: unwrap the data key with KMS, decrypt with the AAD carried in the event,
then check that the clear fields of `detail` are the ones that were sealed.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from posd.envelope import open_sealed
from posd.errors import EnvelopeError
from posd.keys.base import KeyUnwrapper
from sync.events import EVENT_SCHEMA
from sync.outbox import WrappedKey
from sync.side_events import SIDE_DETAIL_TYPES

SEALED_IDENTITY_FIELDS = (
    "seq",
    "event_id",
    "kind",
    "captured_at",
    "client_ref",
    "store_id",
    "terminal_id",
    "meta",
)
SQS_MAX_MESSAGES = 10
POLL_PAUSE_SECONDS = 0.02


@dataclass(frozen=True)
class QueueRoute:
    """An event bus whose rule (events from `source`) targets an SQS queue."""

    bus_name: str
    queue_url: str


def route_bus_to_queue(events: Any, sqs: Any, bus_name: str, source: str) -> QueueRoute:
    queue_url = sqs.create_queue(QueueName=bus_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    events.create_event_bus(Name=bus_name)
    events.put_rule(
        Name=bus_name, EventBusName=bus_name, EventPattern=json.dumps({"source": [source]})
    )
    events.put_targets(
        Rule=bus_name,
        EventBusName=bus_name,
        Targets=[{"Id": "queue", "Arn": attributes["Attributes"]["QueueArn"]}],
    )
    return QueueRoute(bus_name, queue_url)


def receive_events(
    sqs: Any, queue_url: str, expected: int, timeout: float
) -> Iterator[dict[str, Any]]:
    """Yield events from the queue (duplicates included) until `expected` distinct event_ids
    of records have arrived and the queue is quiet, or `timeout` passes. Each message is deleted."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=SQS_MAX_MESSAGES, WaitTimeSeconds=0
        )
        messages = reply.get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            if event.get("detail-type") not in SIDE_DETAIL_TYPES:  # alarms, checkpoints
                seen.add(event["detail"]["event_id"])
            yield event
        if messages:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        elif len(seen) >= expected:
            return
        else:
            time.sleep(POLL_PAUSE_SECONDS)


def wrapped_key_of(detail: dict[str, Any]) -> WrappedKey:
    info = detail["envelope"]["data_key"]
    return WrappedKey(
        key_id=info["key_id"],
        provider=info["provider"],
        key_arn=info["key_arn"],
        algorithm=info["algorithm"],
        wrapped_key=base64.b64decode(info["wrapped_key"]),
        encryption_context=info.get("encryption_context", {}),
    )


def decrypt_event(event: dict[str, Any], unwrapper: KeyUnwrapper) -> bytes:
    """The sensitive payload of one delivered event; `EnvelopeError` if anything is off."""
    detail = event["detail"]
    if detail.get("schema") != EVENT_SCHEMA:
        raise EnvelopeError(f"unknown event schema {detail.get('schema')!r}")
    envelope = detail["envelope"]
    aad = base64.b64decode(envelope["aad"])
    key = unwrapper.unwrap(wrapped_key_of(detail))
    plaintext = open_sealed(
        key, base64.b64decode(envelope["nonce"]), base64.b64decode(envelope["ciphertext"]), aad
    )
    sealed = json.loads(aad)
    for name in SEALED_IDENTITY_FIELDS:
        if sealed[name] != detail[name]:
            raise EnvelopeError(f"detail.{name} does not match the sealed record")
    return plaintext


class CachingUnwrapper:
    """Unwraps each data key once: a data key seals many records."""

    def __init__(self, inner: KeyUnwrapper) -> None:
        self._inner = inner
        self._keys: dict[str, bytes] = {}

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        if wrapped.key_id not in self._keys:
            self._keys[wrapped.key_id] = self._inner.unwrap(wrapped)
        return self._keys[wrapped.key_id]
