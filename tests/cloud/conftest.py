"""Fixtures for the consumer's tests: real posd events delivered through moto's EventBridge to
SQS, the consumer's tables in moto's DynamoDB, its queue with a DLQ, and its alarm bus routed
to a queue the tests read. Nothing of ours is replaced; the clock is the consumer's parameter."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloud import handler
from cloud.alarms import CONSUMER_ALARM_SOURCE, AlarmBus, Alarms
from cloud.consumer import Consumer, ConsumerSettings
from cloud.event_source import QueueFeeder
from cloud.kms import KmsUnwrapper
from cloud.metrics import CountingMetrics
from cloud.p2pe import PaymentCryptography
from cloud.store import Store
from cloud.tables import TableNames, create_tables
from demo.backend import QueueRoute, route_bus_to_queue
from demo.localaws.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION, LocalAws
from demo.localaws.payment_crypto import PaymentCryptographyEndpoint
from demo.pki import LocalCa, TerminalCredentials
from posd.journal import Journal
from posd.keys.base import KeySource
from posd.keys.kms import KmsKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from sync.events import EventBuilder
from tests.cards import TEST_PANS
from tests.sync.conftest import receive_all
from wire.envelope import GENESIS_CHAIN
from wire.events import ALARM_DETAIL_TYPE, ALARM_SCHEMA, CHECKPOINT_DETAIL_TYPE, CHECKPOINT_SCHEMA
from wire.keys import CachingUnwrapper, identity_context
from wire.signing import Verifier

STORE_ID = "store-0042"
TERMINAL_ID = "lane-07"
SOURCE = "posd.test"
RECORDS = 12
GRACE_SECONDS = 60.0
MAX_RECEIVE_COUNT = 3
PUT_EVENTS_LIMIT = 10


class Clock:
    """The consumer's notion of now, moved forward by tests (a grace period in no time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Delivered:
    """Real events as the rule's SQS target received them: records and checkpoints (bodies)."""

    journal_id: str
    records: list[str]  # message bodies in seq order (seq = index + 1)
    chains: list[str]  # each record's chain (hex)
    extra: list[str] = field(default_factory=list)

    def chain_before(self, first_seq: int) -> str:
        return self.chains[first_seq - 2] if first_seq > 1 else GENESIS_CHAIN.hex()


def deliver(events: Any, sqs: Any, entries: list[dict[str, Any]]) -> list[str]:
    """Put `entries` on a fresh bus routed to a fresh queue; the bodies, in entry order."""
    route = route_bus_to_queue(events, sqs, f"posd-cloud-{uuid.uuid4().hex[:8]}", SOURCE)
    for start in range(0, len(entries), PUT_EVENTS_LIMIT):
        chunk = entries[start : start + PUT_EVENTS_LIMIT]
        batch = [{**e, "EventBusName": route.bus_name} for e in chunk]
        assert events.put_events(Entries=batch)["FailedEntryCount"] == 0
    received = receive_all(sqs, route.queue_url, len(entries))
    by_id = {e["detail"]["event_id"]: json.dumps(e) for e in received}
    return [by_id[json.loads(e["Detail"])["event_id"]] for e in entries]


# One CA and one terminal certificate for the whole run (EC key generation is cheap, but the
# tests compare against the same trust anchor the rig's consumer holds).
CA = LocalCa()
TERMINAL = CA.issue(STORE_ID, TERMINAL_ID)


def signed(detail: dict[str, Any], credentials: TerminalCredentials | None = TERMINAL) -> str:
    """The Detail as the terminal sends it: signed with its certificate's key (None: unsigned)."""
    return json.dumps(detail if credentials is None else credentials.signer().sign(detail))


def checkpoint_entry(
    delivered: Delivered,
    first: int,
    last: int,
    credentials: TerminalCredentials | None = TERMINAL,
    **changes: Any,
) -> dict[str, Any]:
    detail = {
        "schema": CHECKPOINT_SCHEMA,
        "event_id": str(uuid.uuid4()),
        "journal_id": delivered.journal_id,
        "store_id": STORE_ID,
        "terminal_id": TERMINAL_ID,
        "first_seq": first,
        "last_seq": last,
        "count": last - first + 1,
        "chain_before": delivered.chain_before(first),
        "chain": delivered.chains[last - 1],
        "created_at": datetime.now(UTC).isoformat(),
        **changes,
    }
    return {
        "Source": SOURCE,
        "DetailType": CHECKPOINT_DETAIL_TYPE,
        "Detail": signed(detail, credentials),
    }


def alarm_entry(
    delivered: Delivered, seq: int, credentials: TerminalCredentials | None = TERMINAL
) -> dict[str, Any]:
    detail = {
        "schema": ALARM_SCHEMA,
        "event_id": str(uuid.uuid4()),
        "journal_id": delivered.journal_id,
        "store_id": STORE_ID,
        "terminal_id": TERMINAL_ID,
        "alarm": "tampered_record",
        "seq": seq,
        "detail": "tampered: chain mismatch",
        "raised_at": datetime.now(UTC).isoformat(),
    }
    return {
        "Source": SOURCE,
        "DetailType": ALARM_DETAIL_TYPE,
        "Detail": signed(detail, credentials),
    }


@dataclass
class Journaled:
    """A posd journal's records as the terminal's sync engine would send them."""

    journal_id: str
    entries: list[dict[str, Any]]  # PutEvents entries, in seq order
    chains: list[str]


# A payment's clear metadata and sealed secret, for the `index`th payment with card `pan`.
Payload = Callable[[int, str], tuple[dict[str, Any], bytes]]


def clear_pan_payload(index: int, pan: str) -> tuple[dict[str, Any], bytes]:
    """A card read the terminal saw in clear: the PAN in the secret, BIN and last four out."""
    meta = {"amount": 100 + index, "currency": "EUR", "bin": pan[:6], "last4": pan[-4:]}
    return meta, json.dumps({"pan": pan}).encode()


def journal_payments(
    state_dir: Path,
    source: KeySource,
    store_id: str = STORE_ID,
    terminal_id: str = TERMINAL_ID,
    count: int = RECORDS,
    payload: Payload = clear_pan_payload,
) -> Journaled:
    """`count` card payments journaled by posd under `source`'s data keys, claiming the lane
    `store_id`/`terminal_id` (a terminal filing as another one claims someone else's)."""
    with (
        Journal.open(state_dir) as journal,
        RotatingKeyProvider(source, rotate_after_records=5) as keys,
    ):
        assert keys.wait_ready(10)
        recorder = Recorder(journal, keys, store_id, terminal_id)
        for i in range(count):
            meta, secret = payload(i, TEST_PANS[i % len(TEST_PANS)])
            recorder.record("payment.card", meta, secret, client_ref=f"ref-{i}")
        builder = EventBuilder(store_id, terminal_id, SOURCE, "unused", journal.journal_id)
        records = list(journal.records())
        return Journaled(
            journal.journal_id,
            [dict(builder.build(record).request_entry) for record in records],
            [record.chain for record in records],
        )


def lane_key(
    kms_client: Any, store_id: str = STORE_ID, terminal_id: str = TERMINAL_ID
) -> KmsKeySource:
    """KMS data keys under a lane's own encryption context (what its IAM policy allows)."""
    key = kms_client.create_key(Description="posd cloud test")["KeyMetadata"]["Arn"]
    return KmsKeySource(kms_client, key, identity_context(store_id, terminal_id))


@pytest.fixture
def delivered(
    tmp_path: Path, local_aws: LocalAws, kms_client: Any, events_client: Any, sqs_client: Any
) -> Delivered:
    """RECORDS card payments journaled by posd (KMS data keys), delivered through a bus."""
    journaled = journal_payments(tmp_path / "state", lane_key(kms_client))
    return Delivered(
        journaled.journal_id,
        deliver(events_client, sqs_client, journaled.entries),
        journaled.chains,
    )


@dataclass
class Rig:
    """The consumer as deployed: its queue (with a DLQ), tables, alarm bus."""

    consumer: Consumer
    store: Store
    clock: Clock
    sqs: Any
    queue_url: str
    dlq_url: str
    alarms: QueueRoute
    feeder: QueueFeeder
    events: Any
    kms: Any
    metrics: CountingMetrics

    def consumer_with(
        self,
        rsa_private_keys: dict[str, Any] | None = None,
        trust: Verifier | None = None,
        settings: ConsumerSettings | None = None,
        p2pe: PaymentCryptography | None = None,
    ) -> Consumer:
        """Another consumer on the rig's tables, bus and clock (what a test varies)."""
        return Consumer(
            self.store,
            Alarms(self.store, AlarmBus(self.events, self.alarms.bus_name), self.metrics),
            CachingUnwrapper(KmsUnwrapper(self.kms, rsa_private_keys)),
            trust if trust is not None else CA.trust_anchor(),
            settings if settings is not None else ConsumerSettings(gap_grace_seconds=GRACE_SECONDS),
            clock=self.clock,
            p2pe=p2pe,
        )

    def with_unwrapper(self, rsa_private_keys: dict[str, Any]) -> Consumer:
        return self.consumer_with(rsa_private_keys=rsa_private_keys)

    def with_trust(self, trust: Verifier) -> Consumer:
        return self.consumer_with(trust=trust)

    def send(self, bodies: list[str]) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def drain(self) -> None:
        self.feeder.drain(timeout=20)

    def send_entries(self, entries: list[dict[str, Any]]) -> list[str]:
        bodies = deliver(self.events, self.sqs, entries)
        self.send(bodies)
        return bodies

    def items(self, table: str) -> list[dict[str, Any]]:
        return list(self.store.scan(getattr(self.store.tables, table)))

    def checkpoint(self, journal_id: str, first_seq: int) -> dict[str, Any]:
        item = self.store.get(
            self.store.tables.checkpoints, {"journal_id": journal_id, "first_seq": first_seq}
        )
        assert item is not None
        return item

    def raised(self) -> list[dict[str, Any]]:
        """Alarm events the consumer published (read off the alarm bus's queue)."""
        found: list[dict[str, Any]] = []
        while True:
            reply = self.sqs.receive_message(QueueUrl=self.alarms.queue_url, MaxNumberOfMessages=10)
            messages = reply.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"])["detail"])
                self.sqs.delete_message(
                    QueueUrl=self.alarms.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def rig(local_aws: LocalAws, kms_client: Any, events_client: Any, sqs_client: Any) -> Rig:
    suffix = uuid.uuid4().hex[:8]
    tables = TableNames.prefixed(f"posd-{suffix}")
    dynamodb = local_aws.client("dynamodb")
    create_tables(dynamodb, tables)
    dlq_url = sqs_client.create_queue(QueueName=f"posd-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs_client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    queue_url = sqs_client.create_queue(
        QueueName=f"posd-events-{suffix}",
        Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": "30"},
    )["QueueUrl"]
    alarms = route_bus_to_queue(
        events_client, sqs_client, f"posd-alarms-{suffix}", CONSUMER_ALARM_SOURCE
    )
    store = Store(dynamodb, tables)
    rig = Rig(
        None,  # type: ignore[arg-type]  # set below: it is built from the rig's own parts
        store,
        Clock(),
        sqs_client,
        queue_url,
        dlq_url,
        alarms,
        None,  # type: ignore[arg-type]
        events_client,
        kms_client,
        CountingMetrics(),
    )
    rig.consumer = rig.consumer_with()
    rig.feeder = QueueFeeder(sqs_client, queue_url, lambda event, _: rig.consumer.handle_sqs(event))
    return rig


@pytest.fixture
def lambda_env(rig: Rig, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function's environment as the template sets it, on the rig's tables, alarm bus and
    trust anchor (moto's endpoint and keys; no grace period), and no function warm yet."""
    env = {
        **rig.store.tables.as_env(),
        "ALARM_BUS_NAME": rig.alarms.bus_name,
        "GAP_GRACE_SECONDS": "0",
        "TRUST_ANCHOR_CA_PEM": CA.ca_pem().decode(),
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_DEFAULT_REGION": EMULATOR_REGION,
        **{name.upper(): value for name, value in EMULATOR_CREDENTIALS.items()},
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler, "_consumer", None)


@pytest.fixture
def hsm() -> Iterator[PaymentCryptographyEndpoint]:
    """The AWS Payment Cryptography stand-in (its data plane, for `cloud.p2pe`)."""
    with PaymentCryptographyEndpoint() as serving:
        yield serving
