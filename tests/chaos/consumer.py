"""The backend's side of the soak: reads the queue all along, as a real consumer does.

Reading while the soak runs keeps the emulator's queue short (a queue of tens of thousands of
messages made every moto call slow enough to time out, and the soak measured moto instead of
posd). Every event is kept, duplicates included, for the checks at the end.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

SQS_BATCH = 10
POLL_WAIT_S = 1
SETTLE_S = 2.0  # after the last expected event: stragglers (late copies) still count


class QueueConsumer(threading.Thread):
    def __init__(self, sqs: Any, queue_url: str) -> None:
        super().__init__(name="queue-consumer", daemon=True)
        self._sqs = sqs
        self._queue_url = queue_url
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self.errors = 0

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                reply = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=SQS_BATCH,
                    WaitTimeSeconds=POLL_WAIT_S,
                )
                messages = reply.get("Messages", [])
                if messages:
                    self._keep([json.loads(m["Body"]) for m in messages])
                    self._sqs.delete_message_batch(
                        QueueUrl=self._queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(messages)
                        ],
                    )
            except Exception:
                self.errors += 1
                time.sleep(POLL_WAIT_S)

    def _keep(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self._events.extend(events)
            self._seen.update(e["detail"].get("event_id", "") for e in events)

    def finish(self, expected: set[str], timeout: float) -> list[dict[str, Any]]:
        """Wait (bounded) until every expected event_id has arrived, then stop; all events."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if expected <= self._seen:
                    break
            time.sleep(0.1)
        time.sleep(SETTLE_S)
        self._halt.set()
        self.join(POLL_WAIT_S * 5)
        with self._lock:
            return list(self._events)

    def received(self) -> int:
        with self._lock:
            return len(self._seen)
