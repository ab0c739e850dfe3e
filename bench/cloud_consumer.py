"""Benchmark: the cloud consumer against the plain backend loop, on the same events, with
and without checking the terminal's signatures.

Prints one JSON object. One journal of N card payments (KMS data keys) and its checkpoints
(one per `CHECKPOINT_EVERY` records, as posd cuts them by default, each signed with the lane's
certificate from a local CA) is delivered through the emulator's EventBridge to three SQS
queues, each event twice (an at-least-once delivery with every event duplicated). The
baseline reads its queue, dedupes in memory and decrypts each record (what the demo did before
the consumer); the consumer gets each of the other queues in SQS event batches
(`cloud.event_source.QueueFeeder`, as Lambda's event source mapping), dedupes, decrypts, files
into DynamoDB and proves every range: with the chain's CA as its trust anchor (`consumer`),
and with a verifier that believes every signature unchecked (`unchecked`: the consumer as it
would be without signature checks), each twice in the order ABBA. All run against the same
moto server in this process, so the ratios are what the tables cost on the emulator, not a
figure for AWS; `verify_us_per_checkpoint` times the signature check alone (no emulator in
it), and `signature_us_per_record` spreads it over the records a checkpoint covers.

Usage: .venv/bin/python bench/cloud_consumer.py [--records N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

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
from wire.envelope import GENESIS_CHAIN  # noqa: E402
from wire.events import (  # noqa: E402
    CHECKPOINT_DETAIL_TYPE,
    EVENT_SCHEMA,
    CheckpointEvent,
    Origin,
    checkpoint_detail,
    detail_json,
)
from wire.keys import CachingUnwrapper  # noqa: E402
from wire.opening import decrypt_event  # noqa: E402
from wire.signing import Signer, SignerIdentity, Verifier  # noqa: E402

DEFAULT_RECORDS = 300
COPIES = 2
CHECKPOINT_EVERY = 100  # records per checkpoint: posd's default `checkpoint_every_records`
VERIFY_ROUNDS = 200
ORDER = ("unchecked", "consumer", "consumer", "unchecked")
STORE_ID, TERMINAL_ID, SOURCE = "store-bench", "lane-01", "posd.bench"
TEST_PAN = "4111111111111111"  # the brands' public Visa test number
PUT_EVENTS_LIMIT = 10
TIMEOUT_SECONDS = 600.0


class UncheckedTrust:
    """Believes every signature without checking it: stands in for the consumer before
    signature checks (never anywhere but this benchmark)."""

    def verify(self, detail: Mapping[str, Any], now: datetime | None = None) -> SignerIdentity:
        return SignerIdentity(str(detail["store_id"]), str(detail["terminal_id"]), 0)


def checkpoint_entries(journal_id: str, chains: list[str], signer: Signer) -> list[dict[str, Any]]:
    """Signed checkpoints over seqs 1..len(chains), CHECKPOINT_EVERY records each."""
    entries = []
    for first in range(1, len(chains) + 1, CHECKPOINT_EVERY):
        last = min(first + CHECKPOINT_EVERY - 1, len(chains))
        detail = checkpoint_detail(
            CheckpointEvent(
                Origin(str(uuid.uuid4()), journal_id, STORE_ID, TERMINAL_ID),
                first,
                last,
                last - first + 1,
                chains[first - 2] if first > 1 else GENESIS_CHAIN.hex(),
                chains[last - 1],
                datetime.now(UTC).isoformat(),
            )
        )
        entries.append(
            {
                "Source": SOURCE,
                "DetailType": CHECKPOINT_DETAIL_TYPE,
                "Detail": detail_json(signer.sign(detail)),
            }
        )
    return entries


def journal_entries(
    aws: LocalAws, state_dir: Path, records: int, signer: Signer
) -> list[dict[str, Any]]:
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
        sealed = list(journal.records())
        entries = [dict(builder.build(record).request_entry) for record in sealed]
        chains = [record.chain for record in sealed]
        return entries + checkpoint_entries(journal.journal_id, chains, signer)


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
        if event["detail"]["schema"] == EVENT_SCHEMA and event_id not in seen:
            seen.add(event_id)
            decrypt_event(event, unwrapper)
    return {"seconds": round(time.perf_counter() - started, 3), "records": len(seen)}


def consumer(
    aws: LocalAws, queue_url: str, expected: int, trust: Verifier, prefix: str
) -> dict[str, Any]:
    dynamodb = aws.client("dynamodb")
    store = Store(dynamodb, TableNames.prefixed(prefix))
    create_tables(dynamodb, store.tables)
    alarms = Alarms(store, AlarmBus(aws.client("events"), "default"))
    handler = Consumer(store, alarms, CachingUnwrapper(KmsUnwrapper(aws.client("kms"))), trust)
    feeder = QueueFeeder(aws.client("sqs"), queue_url, lambda event, _: handler.handle_sqs(event))
    checkpoints = -(-expected // CHECKPOINT_EVERY)

    def done() -> bool:
        if store.count(store.tables.payments) < expected:
            return False
        settled = [c for c in store.scan(store.tables.checkpoints) if "open" not in c]
        return len(settled) >= checkpoints

    started = time.perf_counter()
    fed = feeder.drain(TIMEOUT_SECONDS, until=done)
    seconds = time.perf_counter() - started
    copies = sum(int(item["copies"]) for item in store.scan(store.tables.events))
    states = [str(c["state"]) for c in store.scan(store.tables.checkpoints)]
    return {
        "seconds": round(seconds, 3),
        "records": store.count(store.tables.payments),
        "ms_per_record": round(seconds * 1000 / expected, 3),
        "copies_counted": copies,
        "checkpoints_complete": states.count("complete"),
        "alarms": store.count(store.tables.alarms),
        "batches": fed.batches,
        "failures": fed.failures,
    }


def mean_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs' figures averaged (the counts are the same in each: the first run's)."""
    seconds = sum(run["seconds"] for run in runs) / len(runs)
    return {
        **runs[0],
        "seconds": round(seconds, 3),
        "seconds_each": [run["seconds"] for run in runs],
        "ms_per_record": round(seconds * 1000 / runs[0]["records"], 3),
    }


def verify_cost(trust: Verifier, signer: Signer) -> float:
    """Microseconds per signature check of one checkpoint Detail (a warm anchor)."""
    detail = signer.sign(
        {"schema": "posd.checkpoint/1", "store_id": STORE_ID, "terminal_id": TERMINAL_ID}
    )
    trust.verify(detail)
    started = time.perf_counter()
    for _ in range(VERIFY_ROUNDS):
        trust.verify(detail)
    return (time.perf_counter() - started) * 1e6 / VERIFY_ROUNDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    records = parser.parse_args().records
    # stdout is the result's: the consumer's log lines go to stderr
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    for name, value in EMULATOR_CREDENTIALS.items():
        os.environ.setdefault(name.upper(), value)
    ca = LocalCa()
    signer = ca.issue(STORE_ID, TERMINAL_ID).signer()
    with tempfile.TemporaryDirectory(prefix="posd-bench-") as scratch, LocalAws() as aws:
        entries = journal_entries(aws, Path(scratch) / "state", records, signer)
        plain = baseline(aws, deliver(aws, "posd-bench-plain", entries), records)
        # ABBA: the emulator slows as its tables fill, so each variant runs once early and
        # once late, and the two runs are averaged
        runs: dict[str, list[dict[str, Any]]] = {"unchecked": [], "consumer": []}
        trusts: dict[str, Verifier] = {"unchecked": UncheckedTrust(), "consumer": ca.trust_anchor()}
        for turn, variant in enumerate(ORDER):
            queue = deliver(aws, f"posd-bench-{variant}-{turn}", entries)
            runs[variant].append(consumer(aws, queue, records, trusts[variant], f"{variant}{turn}"))
        unchecked, checked = mean_run(runs["unchecked"]), mean_run(runs["consumer"])
    verify_us = verify_cost(ca.trust_anchor(), signer)
    print(
        json.dumps(
            {
                "records": records,
                "copies_each": COPIES,
                "checkpoint_every": CHECKPOINT_EVERY,
                "baseline": {**plain, "records_per_s": round(records / plain["seconds"], 1)},
                "unchecked": {
                    **unchecked,
                    "records_per_s": round(records / unchecked["seconds"], 1),
                },
                "consumer": {**checked, "records_per_s": round(records / checked["seconds"], 1)},
                "consumer_over_baseline_seconds": round(checked["seconds"] / plain["seconds"], 2),
                "consumer_over_unchecked_seconds": round(
                    checked["seconds"] / unchecked["seconds"], 2
                ),
                "verify_us_per_checkpoint": round(verify_us, 1),
                "signature_us_per_record": round(verify_us / CHECKPOINT_EVERY, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
