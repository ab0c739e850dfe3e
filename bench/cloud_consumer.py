"""Benchmark: the cloud consumer against the plain backend loop, on the same events.

Prints one JSON object. One journal of N card payments (KMS data keys) is delivered through
the emulator's EventBridge to two SQS queues, each record twice (an at-least-once delivery
with every record duplicated). The baseline reads its queue, dedupes in memory and decrypts
each record (what the demo did before the consumer); the consumer gets the other queue in
SQS event batches (`cloud.event_source.QueueFeeder`, as Lambda's event source mapping) and
dedupes, decrypts and files into DynamoDB. Both run against the same moto server in this
process, so the ratio (consumer / baseline seconds) is what the tables cost on the emulator,
not a figure for AWS.

Usage: .venv/bin/python bench/cloud_consumer.py [--records N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloud.alarms import AlarmBus, Alarms  # noqa: E402
from cloud.consumer import Consumer  # noqa: E402
from cloud.event_source import QueueFeeder  # noqa: E402
from cloud.kms import KmsUnwrapper  # noqa: E402
from cloud.store import Store  # noqa: E402
from cloud.tables import TableNames, create_tables  # noqa: E402
from demo.backend import receive_events, route_bus_to_queue  # noqa: E402
from demo.localaws.emulator import EMULATOR_CREDENTIALS, LocalAws  # noqa: E402
from demo.pki import LocalCa  # noqa: E402
from posd.journal import Journal  # noqa: E402
from posd.keys.kms import KmsKeySource  # noqa: E402
from posd.keys.provider import RotatingKeyProvider  # noqa: E402
from posd.recorder import Recorder  # noqa: E402
from sync.events import EventBuilder  # noqa: E402
from wire.keys import CachingUnwrapper  # noqa: E402
from wire.opening import decrypt_event  # noqa: E402

DEFAULT_RECORDS = 300
COPIES = 2
STORE_ID, TERMINAL_ID, SOURCE = "store-bench", "lane-01", "posd.bench"
TEST_PAN = "4111111111111111"  # the brands' public Visa test number
PUT_EVENTS_LIMIT = 10
TIMEOUT_SECONDS = 600.0


def journal_entries(aws: LocalAws, state_dir: Path, records: int) -> list[dict[str, Any]]:
    kms = aws.client("kms")
    key = kms.create_key(Description="posd bench")["KeyMetadata"]["Arn"]
    context = {"store_id": STORE_ID, "terminal_id": TERMINAL_ID}
    with (
        Journal.open(state_dir) as journal,
        RotatingKeyProvider(KmsKeySource(kms, key, context)) as keys,
    ):
        keys.wait_ready(10)
        recorder = Recorder(journal, keys, STORE_ID, TERMINAL_ID)
        for i in range(records):
            meta = {"amount": 100 + i, "currency": "EUR"}
            recorder.record("payment.card", meta, json.dumps({"pan": TEST_PAN}).encode())
        builder = EventBuilder(STORE_ID, TERMINAL_ID, SOURCE, "unused", journal.journal_id)
        return [dict(builder.build(record).request_entry) for record in journal.records()]


def deliver(aws: LocalAws, bus: str, entries: list[dict[str, Any]]) -> str:
    """Every entry COPIES times through a bus whose rule targets a fresh queue."""
    events = aws.client("events")
    route = route_bus_to_queue(events, aws.client("sqs"), bus, SOURCE)
    for start in range(0, len(entries), PUT_EVENTS_LIMIT):
        batch = [{**e, "EventBusName": bus} for e in entries[start : start + PUT_EVENTS_LIMIT]]
        for _ in range(COPIES):
            events.put_events(Entries=batch)
    return route.queue_url


def baseline(aws: LocalAws, queue_url: str, expected: int) -> dict[str, Any]:
    unwrapper = CachingUnwrapper(KmsUnwrapper(aws.client("kms")))
    started = time.perf_counter()
    seen: set[str] = set()
    for event in receive_events(aws.client("sqs"), queue_url, expected, TIMEOUT_SECONDS):
        event_id = event["detail"]["event_id"]
        if event_id not in seen:
            seen.add(event_id)
            decrypt_event(event, unwrapper)
    return {"seconds": round(time.perf_counter() - started, 3), "records": len(seen)}


def consumer(aws: LocalAws, queue_url: str, expected: int) -> dict[str, Any]:
    dynamodb = aws.client("dynamodb")
    store = Store(dynamodb, TableNames.prefixed("posd-bench"))
    create_tables(dynamodb, store.tables)
    alarms = Alarms(store, AlarmBus(aws.client("events"), "default"))
    handler = Consumer(
        store, alarms, CachingUnwrapper(KmsUnwrapper(aws.client("kms"))), LocalCa().trust_anchor()
    )
    feeder = QueueFeeder(aws.client("sqs"), queue_url, lambda event, _: handler.handle_sqs(event))
    started = time.perf_counter()
    fed = feeder.drain(
        TIMEOUT_SECONDS, until=lambda: store.count(store.tables.payments) >= expected
    )
    seconds = time.perf_counter() - started
    copies = sum(int(item["copies"]) for item in store.scan(store.tables.events))
    return {
        "seconds": round(seconds, 3),
        "records": store.count(store.tables.payments),
        "copies_counted": copies,
        "batches": fed.batches,
        "failures": fed.failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    records = parser.parse_args().records
    for name, value in EMULATOR_CREDENTIALS.items():
        os.environ.setdefault(name.upper(), value)
    with tempfile.TemporaryDirectory(prefix="posd-bench-") as scratch, LocalAws() as aws:
        entries = journal_entries(aws, Path(scratch) / "state", records)
        plain = baseline(aws, deliver(aws, "posd-bench-plain", entries), records)
        filed = consumer(aws, deliver(aws, "posd-bench-consumer", entries), records)
    print(
        json.dumps(
            {
                "records": records,
                "copies_each": COPIES,
                "baseline": {**plain, "records_per_s": round(records / plain["seconds"], 1)},
                "consumer": {**filed, "records_per_s": round(records / filed["seconds"], 1)},
                "consumer_over_baseline_seconds": round(filed["seconds"] / plain["seconds"], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
