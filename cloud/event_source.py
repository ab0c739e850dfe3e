"""Stands in for Lambda's SQS event source mapping where there is no Lambda (demo, tests).

It does what the mapping does for a standard queue: receive up to ten messages, hand them to
the handler as one SQS event (the same record shape Lambda builds), delete the ones the
handler did not list in `batchItemFailures`, and leave the failed ones to come back. Lambda
waits for the visibility timeout to run out; this makes them visible again at once, which is
the same for SQS's receive count and so for the redrive policy (the DLQ).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Handler = Callable[[Mapping[str, Any], object], Mapping[str, Any]]
BATCH_SIZE = 10
IDLE_PAUSE_SECONDS = 0.02


@dataclass
class Fed:
    batches: int = 0
    messages: int = 0
    failures: int = 0


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class QueueFeeder:
    def __init__(self, sqs: Any, queue_url: str, handler: Handler) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._handler = handler
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self._arn = attributes["Attributes"]["QueueArn"]
        self._region = self._arn.split(":")[3]
        self.fed = Fed()

    def feed_once(self) -> int:
        """One batch; returns how many messages it held (0: the queue looked empty)."""
        reply = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        )
        messages = reply.get("Messages", [])
        if not messages:
            return 0
        answer = self._handler(sqs_event(messages, self._arn, self._region), None)
        failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        again = [m for m in messages if m["MessageId"] in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        if again:
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(again)
                ],
            )
        self.fed.batches += 1
        self.fed.messages += len(messages)
        self.fed.failures += len(again)
        return len(messages)

    def drain(self, timeout: float, until: Callable[[], bool] = lambda: True) -> Fed:
        """Feed batches until the queue is empty and `until()` holds, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.feed_once() == 0:
                if until():
                    break
                time.sleep(IDLE_PAUSE_SECONDS)
        return self.fed
