"""Fixtures for the sync tests: a KMS key, a bus whose rule feeds an SQS queue, a real
journal filled through the real Recorder, the fault proxy, and an engine factory."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from demo.backend import QueueRoute, route_bus_to_queue
from demo.devconfig import DevConfig
from demo.localaws.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION, LocalAws
from demo.localaws.eventbridge_v2 import EventBridgeV2Endpoint
from posd.assembly import engine_for
from posd.journal import Journal
from posd.keys.kms import KmsKeySource
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from sync.engine import SyncEngine
from sync.settings import SyncSettings
from sync.watermarks import WatermarkTable
from tests.cards import AMEX_TEST_PAN, MASTERCARD_TEST_PAN, VISA_TEST_PAN
from tests.sync.faultproxy import FaultProxy
from wire.events import EVENT_SCHEMA
from wire.signing import Signer

STORE_ID = "store-0042"
TERMINAL_ID = "lane-07"
SOURCE = "posd.test"
TEST_PANS = (VISA_TEST_PAN, MASTERCARD_TEST_PAN, AMEX_TEST_PAN)
RECEIVE_TIMEOUT_SECONDS = 20.0

# Small timeouts and intervals so faults resolve in a test's time, still valid settings.
FAST = SyncSettings(
    source=SOURCE,
    connect_timeout_seconds=0.5,
    read_timeout_seconds=1.0,
    max_read_timeout_seconds=1.0,
    lease_seconds=3.0,
    backoff_base_seconds=0.02,
    backoff_cap_seconds=0.2,
    offline_after_failures=2,
    probe_min_seconds=0.05,
    probe_max_seconds=0.3,
    idle_poll_seconds=0.02,
    # The rate limiter's floor on the same scale: a test that throttles the first requests
    # (nothing accepted yet, so the limiter drops to its floor) still drains in seconds.
    rate_min_per_second=50.0,
)


Route = QueueRoute


WAIT_SECONDS = 15.0  # how long a test waits for an engine to get somewhere
POLL_SECONDS = 0.02


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    """`condition()`'s first truthy value, polled for `WAIT_SECONDS`; else fail naming `what`."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"not within {WAIT_SECONDS} s: {what}")


@pytest.fixture
def route(events_client: Any, sqs_client: Any) -> Route:
    return route_bus_to_queue(events_client, sqs_client, f"posd-{uuid.uuid4().hex[:10]}", SOURCE)


@pytest.fixture
def kms_key(kms_client: Any) -> str:
    return str(kms_client.create_key(Description="posd sync test")["KeyMetadata"]["Arn"])


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "state") as opened:
        yield opened


@pytest.fixture
def recorder(journal: Journal, kms_client: Any, kms_key: str) -> Iterator[Recorder]:
    context = {"store_id": STORE_ID, "terminal_id": TERMINAL_ID}
    with RotatingKeyProvider(KmsKeySource(kms_client, kms_key, context)) as keys:
        assert keys.wait_ready(10)
        yield Recorder(journal, keys, STORE_ID, TERMINAL_ID)


def fill(recorder: Recorder, count: int) -> list[str]:
    """Record `count` card payments; returns their event_ids in seq order."""
    ids = []
    for i in range(count):
        pan = TEST_PANS[i % len(TEST_PANS)]
        secret = json.dumps({"pan": pan, "expiry": "2912"}).encode()
        meta = {"amount": 100 + i, "currency": "EUR", "bin": pan[:6], "last4": pan[-4:]}
        ids.append(recorder.record("payment.card", meta, secret, client_ref=f"ref-{i}").event_id)
    return ids


def secret_of(index: int) -> bytes:
    pan = TEST_PANS[index % len(TEST_PANS)]
    return json.dumps({"pan": pan, "expiry": "2912"}).encode()


@pytest.fixture
def proxy(local_aws: LocalAws) -> Iterator[FaultProxy]:
    proxied = FaultProxy(local_aws.endpoint_url)
    yield proxied
    proxied.down()


def emulator_session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
        region_name=EMULATOR_REGION,
    )


EngineFactory = Callable[..., SyncEngine]


@pytest.fixture
def make_engine(journal: Journal, route: Route) -> Iterator[EngineFactory]:
    engines: list[SyncEngine] = []

    def factory(
        endpoint: str,
        settings: SyncSettings = FAST,
        watermarks: WatermarkTable | None = None,
        signer: Signer | None = None,
        **changes: Any,
    ) -> SyncEngine:
        chosen = replace(settings, event_bus_name=route.bus_name, **changes)
        engine = engine_for(
            journal,
            chosen,
            store_id=STORE_ID,
            terminal_id=TERMINAL_ID,
            endpoint_url=endpoint,
            session=emulator_session(),
            watermarks=watermarks,
            signer=signer,
        )
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


def receive_all(
    sqs: Any, queue_url: str, expected: int, settle: float = 0.3
) -> list[dict[str, Any]]:
    """Every event on the queue (duplicates kept): waits for `expected` distinct event_ids,
    then a short settle time for stragglers. Bounded by RECEIVE_TIMEOUT_SECONDS."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + RECEIVE_TIMEOUT_SECONDS
    quiet_until: float | None = None
    while time.monotonic() < deadline:
        reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = reply.get("Messages", [])
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        distinct = {e["detail"]["event_id"] for e in events}
        if len(distinct) >= expected:
            if quiet_until is None:
                quiet_until = time.monotonic() + settle
            elif time.monotonic() >= quiet_until and not messages:
                break
        if not messages:
            time.sleep(0.02)
    return events


def event_ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail"]["event_id"] for e in events]


def record_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records' events only: without the side lane's alarms and checkpoints."""
    return [e for e in events if e["detail"]["schema"] == EVENT_SCHEMA]


# A config whose terminal delivers to the test route through the emulator, with a journal of
# CLI_RECORDS payments: what `posd sync ...` and `posd journal ...` tests run against.
CLI_RECORDS = 12


@pytest.fixture
def cli_config(route: Route, aws_endpoint: str) -> DevConfig:
    """The CLI tests' terminal config (written as `config_file`): a test that needs it changed
    writes `cli_config.amended(...)` over it."""
    return DevConfig(
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        api={"socket": "api.sock"},
        aws={"region": "us-east-1", "endpoint_url": aws_endpoint},
        sync={
            "event_bus_name": route.bus_name,
            "source": "posd.test",
            "backoff_base_seconds": 0.02,
        },
        devices={},
    )


@pytest.fixture
def config_file(tmp_path: Path, cli_config: DevConfig, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    path = cli_config.write(tmp_path / "posd.toml")
    record_payments(tmp_path, CLI_RECORDS)
    return path


def record_payments(config_dir: Path, count: int, amount: int = 500) -> None:
    """Append `count` card payments to the journal of the config in `config_dir`."""
    with (
        Journal.open(config_dir / "state") as journal,
        RotatingKeyProvider(LocalKeySource(config_dir / "kek.b64", create=True)) as keys,
    ):
        assert keys.wait_ready(5)
        recorder = Recorder(journal, keys, STORE_ID, TERMINAL_ID)
        for _ in range(count):
            meta = {"amount": amount, "currency": "EUR"}
            recorder.record("payment.card", meta, VISA_TEST_PAN.encode())


# --- EventBridge v2: the local v2 endpoint (demo/localaws/eventbridge_v2.py) over HTTP --------

# What a v2 request may carry (sync/eventbridge/v2.py): the tests batch up to it.
V2_MAX_ENTRIES = 100


@dataclass(frozen=True)
class V2Route:
    """A v2 bus on the local endpoint whose accepted events go to an SQS queue."""

    endpoint: EventBridgeV2Endpoint
    bus_arn: str
    queue_url: str


@pytest.fixture
def v2_route(sqs_client: Any) -> Iterator[V2Route]:
    name = f"posd-v2-{uuid.uuid4().hex[:10]}"
    queue_url = sqs_client.create_queue(QueueName=name)["QueueUrl"]
    with EventBridgeV2Endpoint() as endpoint:
        yield V2Route(endpoint, endpoint.create_bus(name, sqs_client, queue_url), queue_url)


def v2_settings(route: V2Route, settings: SyncSettings = FAST, **changes: Any) -> SyncSettings:
    """`settings` switched to api = "v2" on the route's bus, batching up to 100 entries."""
    v2 = {"api": "v2", "event_bus_arn": route.bus_arn, "max_entries_per_request": V2_MAX_ENTRIES}
    return replace(settings, **{**v2, **changes})


@pytest.fixture
def make_v2_engine(journal: Journal, v2_route: V2Route) -> Iterator[EngineFactory]:
    """Engines with api = "v2" sending to `endpoint` (the v2 endpoint, or a proxy to it)."""
    engines: list[SyncEngine] = []

    def factory(
        endpoint: str,
        settings: SyncSettings = FAST,
        signer: Signer | None = None,
        **changes: Any,
    ) -> SyncEngine:
        chosen = v2_settings(v2_route, settings, **changes)
        engine = engine_for(
            journal,
            chosen,
            store_id=STORE_ID,
            terminal_id=TERMINAL_ID,
            endpoint_url=endpoint,
            session=emulator_session(),
            signer=signer,
        )
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()
