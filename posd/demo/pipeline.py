"""`posd demo`: the main job end to end on embedded defaults.

Starts a local AWS emulator (moto over HTTP), creates the terminal's KMS keys and an event
bus routed to an SQS queue, opens the simulated card reader (a pty driven by the real serial
driver) and palm scanner (a simulated USB bus under the real pyusb driver), captures N
payments from them through the real key provider, envelope and journal, delivers the journal
with the real sync engine, then plays the backend: receives every event from the queue,
unwraps its data key with kms:Decrypt, decrypts it and checks it against what was captured.
Nothing is mocked; the cards are the brands' public test cards of the simulator's deck.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.card.reader import CardReader
from drivers.card.results import CardRead
from drivers.palm.identity import Matched
from drivers.palm.scanner import PalmScanner
from posd.aws import kms_client, sync_engine
from posd.capture import CaptureParts, Payment, card_capture, palm_capture
from posd.config import Config, parse_config
from posd.demo.backend import CachingUnwrapper, decrypt_event, receive_events, route_bus_to_queue
from posd.demo.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION, LocalAws
from posd.devices import build_card_reader, build_palm_scanner
from posd.errors import EnvelopeError, KeyProviderError, PosdError
from posd.journal import Journal
from posd.keys.factory import build_key_provider
from posd.keys.kms import KmsUnwrapper
from posd.recorder import Recorder

DEMO_CONFIG_NAME = Path("<posd demo defaults>")
KEY_READY_TIMEOUT_SECONDS = 15.0
DRAIN_TIMEOUT_SECONDS = 300.0
RECEIVE_TIMEOUT_SECONDS = 120.0
CURRENCIES = ("EUR", "USD", "GBP")
DEMO_TERMINAL_ID = "lane-01"
PALM_EVERY = 5  # one payment in five by palm, the others by card
DEVICE_TIMEOUT_SECONDS = 10.0


class DemoError(PosdError):
    code = "demo_failed"


@dataclass(frozen=True)
class DemoResult:
    payments: int
    by_kind: dict[str, int]
    captured: int
    delivered: int
    received: int
    duplicates: int
    decrypted: int
    lost: int
    verify_ok: bool
    seconds: float
    key_sources: dict[str, int]
    state_dir: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def demo_config(state_dir: Path, endpoint_url: str, kms_key_id: str, offline_key_id: str) -> Config:
    document = {
        "terminal": {
            "store_id": "store-demo",
            "terminal_id": DEMO_TERMINAL_ID,
            "mode": "production",
            "state_dir": str(state_dir),
        },
        "aws": {"region": EMULATOR_REGION, "endpoint_url": endpoint_url},
        "keys": {
            "provider": "kms",
            "kms_key_id": kms_key_id,
            "offline_key_id": offline_key_id,
            "rotate_after_records": 250,
        },
        "sync": {"event_bus_name": "posd-demo", "source": "posd.demo"},
        "devices": {
            "card_reader": {"driver": "simulated"},
            "palm_scanner": {
                "driver": "simulated",
                "identities": {"demo-shopper": "tok-demo-shopper-0001"},
                "present": "demo-shopper",
                "scan_time_s": 0.0,
            },
        },
    }
    return parse_config(document, DEMO_CONFIG_NAME)


def _capture_one(
    rng: random.Random, index: int, lane: str, reader: CardReader, scanner: PalmScanner
) -> CaptureParts:
    """One payment at the lane: every PALM_EVERY-th by palm, the others by card."""
    payment = Payment(rng.randint(100, 25_000), rng.choice(CURRENCIES), lane)
    if index % PALM_EVERY == PALM_EVERY - 1:
        result = scanner.identify(timeout=DEVICE_TIMEOUT_SECONDS)
        if not isinstance(result, Matched):
            raise DemoError(f"the simulated palm scanner answered {result.outcome.value}")
        return palm_capture(payment, result)
    read = reader.read_card(payment.amount_minor, payment.currency, timeout=DEVICE_TIMEOUT_SECONDS)
    if not isinstance(read, CardRead):
        raise DemoError(f"the simulated card reader answered {read.outcome.value}")
    return card_capture(payment, read)


def run_demo(
    payments: int,
    keep_state: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoResult:
    """Capture `payments`, deliver them to EventBridge, receive and decrypt them as the backend."""
    started = time.perf_counter()
    for name, value in EMULATOR_CREDENTIALS.items():
        os.environ.setdefault(name.upper(), value)
    with tempfile.TemporaryDirectory(prefix="posd-demo-") as scratch, LocalAws() as aws:
        state_dir = keep_state if keep_state is not None else Path(scratch) / "state"
        kms, sqs = aws.client("kms"), aws.client("sqs")
        kms_key = kms.create_key(Description="posd demo journal key")["KeyMetadata"]["Arn"]
        offline_key = kms.create_key(
            Description="posd demo offline key", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT"
        )["KeyMetadata"]["Arn"]
        config = demo_config(state_dir, aws.endpoint_url, kms_key, offline_key)
        route = route_bus_to_queue(
            aws.client("events"), sqs, config.sync.event_bus_name, config.sync.source
        )

        provider = build_key_provider(config, kms_client(config.aws)).start()
        provider.wait_ready(KEY_READY_TIMEOUT_SECONDS)
        rng = random.Random()
        digests: dict[str, str] = {}
        kinds: dict[str, int] = {}
        reader, scanner = build_card_reader(config), build_palm_scanner(config)
        try:
            with (
                reader,
                scanner,
                Journal.open(config.state_dir, config.journal) as journal,
            ):
                recorder = Recorder(journal, provider, config.store_id, config.terminal_id)
                for index in range(payments):
                    parts = _capture_one(rng, index, config.terminal_id, reader, scanner)
                    record = recorder.record(
                        parts.kind, parts.meta, parts.secret, client_ref=f"demo-{index}"
                    )
                    digests[record.event_id] = hashlib.sha256(parts.secret).hexdigest()
                    kinds[parts.kind] = kinds.get(parts.kind, 0) + 1
                    if progress:
                        progress("capturing", index + 1, payments)
                captured = journal.summary().pending

                with sync_engine(journal, config) as engine:
                    drained = engine.drain(
                        timeout=DRAIN_TIMEOUT_SECONDS,
                        progress=(lambda p: progress("delivering", p.delivered, captured))
                        if progress
                        else None,
                    )
                report = journal.verify()

            unwrapper = CachingUnwrapper(
                KmsUnwrapper(kms, {offline_key: aws.rsa_private_key(offline_key)})
            )
            received: set[str] = set()
            decrypted: set[str] = set()
            copies = 0
            key_sources: dict[str, int] = {}
            for event in receive_events(sqs, route.queue_url, captured, RECEIVE_TIMEOUT_SECONDS):
                copies += 1
                event_id = event["detail"]["event_id"]
                received.add(event_id)
                try:
                    secret = decrypt_event(event, unwrapper)
                except (KeyProviderError, EnvelopeError):
                    continue
                if (
                    event_id not in decrypted
                    and digests.get(event_id) == hashlib.sha256(secret).hexdigest()
                ):
                    decrypted.add(event_id)
                    provider_name = event["detail"]["envelope"]["data_key"]["provider"]
                    key_sources[provider_name] = key_sources.get(provider_name, 0) + 1
                if progress:
                    progress("receiving", len(received), captured)
        finally:
            provider.close()
    return DemoResult(
        payments=payments,
        by_kind=kinds,
        captured=captured,
        delivered=drained.delivered,
        received=len(received),
        duplicates=copies - len(received),
        decrypted=len(decrypted),
        lost=payments - len(decrypted),
        verify_ok=report.ok,
        seconds=round(time.perf_counter() - started, 3),
        key_sources=key_sources,
        state_dir=str(keep_state) if keep_state is not None else None,
    )
