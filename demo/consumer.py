"""The demo's backend: the cloud side's reference consumer, fed from the emulator's queue.

The queue's messages go to `cloud.consumer.Consumer.handle_sqs` as Lambda's event source
mapping would hand them over (`cloud.event_source.QueueFeeder`), with the consumer's tables in
the emulator's DynamoDB; the figures are then read back from the tables, as a chain's own
reports would be: payments, each checkpoint's verdict, the journal's proven watermark (every
range signed by the lane's certificate, complete, chained and contiguous), alarms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloud.alarms import AlarmBus, Alarms
from cloud.consumer import Consumer
from cloud.event_source import QueueFeeder
from cloud.kms import KmsUnwrapper
from cloud.p2pe import P2peSettings, PaymentCryptography
from cloud.store import Store
from cloud.tables import TableNames, create_tables
from demo.localaws.emulator import LocalAws
from demo.localaws.payment_crypto import PROCESSOR_ALIAS, PaymentCryptographyEndpoint
from wire.keys import CachingUnwrapper
from wire.masking import MASK_CHAR
from wire.signing import Verifier
from wire.watermark import PROVEN_SEQ

TABLE_PREFIX = "posd-demo"
# The consumer's alarms go to the emulator's default bus, which always exists (the terminal's
# bus may be EventBridge v2's, elsewhere); the demo reads them from the alarms table.
ALARM_BUS = "default"
RECORD_KIND = "record"

# Whether a payment row (clear metadata, masked payload) is what the daemon answered.
Matcher = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


@dataclass
class Consumed:
    """What the consumer's tables say after the queue was drained."""

    received: int = 0  # distinct records
    duplicates: int = 0  # copies beyond the first
    matched: set[str] = field(default_factory=set)  # event_ids decrypted and as answered
    by_kind: dict[str, int] = field(default_factory=dict)
    key_sources: dict[str, int] = field(default_factory=dict)
    ranges: dict[str, int] = field(default_factory=dict)  # checkpoints by state
    proven_seq: int = 0  # the journal's proven watermark, as the consumer published it
    alarms: dict[str, int] = field(default_factory=dict)  # by name: any is a failure here
    # AWS Payment Cryptography calls by operation: P2PE tracks are opened only there
    p2pe_calls: dict[str, int] = field(default_factory=dict)
    # card payments filed with a masked PAN and re-encrypted tracks, nothing in clear
    p2pe_filed: int = 0


def filed_masked(payment: Mapping[str, Any]) -> bool:
    """A P2PE payment row as the consumer should file it: the processor-key ciphertexts and
    a masked PAN (at most BIN and last four: masked digits never shown)."""
    masked = str(payment.get("masked_pan", ""))
    return bool(payment.get("p2pe")) and MASK_CHAR in masked and "pan" not in payment


def consume(
    aws: LocalAws,
    queue_url: str,
    offline_key_arn: str,
    answers: Mapping[str, Mapping[str, Any]],
    matches: Matcher,
    timeout: float,
    trust: Verifier,
    payment_crypto: PaymentCryptographyEndpoint | None = None,
) -> Consumed:
    kms, dynamodb = aws.client("kms"), aws.client("dynamodb")
    store = Store(dynamodb, TableNames.prefixed(TABLE_PREFIX))
    create_tables(dynamodb, store.tables)
    unwrapper = KmsUnwrapper(kms, {offline_key_arn: aws.rsa_private_key(offline_key_arn)})
    consumer = Consumer(
        store,
        Alarms(store, AlarmBus(aws.client("events"), ALARM_BUS)),
        CachingUnwrapper(unwrapper),
        trust,
        p2pe=None if payment_crypto is None else _re_encrypting(payment_crypto),
    )

    def all_filed() -> bool:
        return store.count(store.tables.payments) >= len(answers)

    QueueFeeder(aws.client("sqs"), queue_url, lambda event, _: consumer.handle_sqs(event)).drain(
        timeout, until=all_filed
    )
    consumer.recheck_open()
    result = Consumed()
    for event in store.scan(store.tables.events):
        if event["kind"] == RECORD_KIND:
            result.received += 1
            result.duplicates += int(event["copies"]) - 1
    for checkpoint in store.scan(store.tables.checkpoints):
        state = str(checkpoint["state"])
        result.ranges[state] = result.ranges.get(state, 0) + 1
    for alarm in store.scan(store.tables.alarms):
        name = str(alarm["alarm"])
        result.alarms[name] = result.alarms.get(name, 0) + 1
    result.proven_seq = max(
        (int(item[PROVEN_SEQ]) for item in store.scan(store.tables.watermarks)), default=0
    )
    for payment in store.scan(store.tables.payments):
        answer = answers.get(payment["event_id"])
        if answer is None or not matches(answer, payment):
            continue
        result.matched.add(payment["event_id"])
        result.p2pe_filed += int(filed_masked(payment))
        kind, source = str(payment["kind"]), str(payment["key_provider"])
        result.by_kind[kind] = result.by_kind.get(kind, 0) + 1
        result.key_sources[source] = result.key_sources.get(source, 0) + 1
    if payment_crypto is not None:
        result.p2pe_calls = dict(payment_crypto.stats.served)
    return result


def _re_encrypting(payment_crypto: PaymentCryptographyEndpoint) -> PaymentCryptography:
    """The consumer's P2PE part on the stand-in, re-encrypting to its processor key."""
    processor = payment_crypto.key(PROCESSOR_ALIAS)
    settings = P2peSettings(processor.arn, processor.algorithm)
    return PaymentCryptography(payment_crypto.client(), settings)
