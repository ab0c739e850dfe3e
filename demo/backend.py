"""The receiving side, as the backend runs it: route the bus to a queue, read, decrypt.

posd itself never decrypts (a terminal's role has no `kms:Decrypt`); this module is what
the demo and the tests use to route a bus to a queue and read it. Opening a record (unwrap,
decrypt, check the sealed identity) is the contract's (`wire.opening`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from wire.events import SIDE_DETAIL_TYPES

__all__ = ["QueueRoute", "receive_events", "route_bus_to_queue"]

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
