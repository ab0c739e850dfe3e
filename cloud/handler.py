"""The Lambda entry point: `cloud.handler.lambda_handler`.

Fed by the SQS queue the bus rule targets (an event source mapping with
`FunctionResponseTypes: [ReportBatchItemFailures]`), and by a schedule that re-checks open
checkpoints when no message comes. Configuration is the environment the template sets:
the table names (`cloud.tables.TABLE_ENV`), `ALARM_BUS_NAME`, `GAP_GRACE_SECONDS`,
`CHECKPOINT_SILENCE_SECONDS`, the
trust anchor (`cloud.trust`: `TRUST_ANCHOR_CA_PEM`, `CRL_PARAMETER`), and the P2PE settings
(`cloud.p2pe`: `P2PE_OUTGOING_KEY`, `P2PE_OUTGOING_KEY_ALGORITHM`, `P2PE_DECRYPT`); with
`FAIR_RATE_PARAMETER` the schedule, and the SQS batches every 15 s at most, also publish
the lanes' fair rate (`cloud.fair_rate`).
The clients and the data-key cache live across warm invocations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import boto3
import structlog
from botocore.exceptions import BotoCoreError, ClientError

from cloud.alarms import AlarmBus, Alarms
from cloud.consumer import (
    DEFAULT_CHECKPOINT_SILENCE_SECONDS,
    DEFAULT_GAP_GRACE_SECONDS,
    Consumer,
    ConsumerSettings,
)
from cloud.emf import PowertoolsMetrics
from cloud.errors import ConsumerConfigError
from cloud.fair_rate import FairRatePublisher, publisher_from_env
from cloud.kms import KmsUnwrapper
from cloud.p2pe import SERVICE_NAME as P2PE_SERVICE
from cloud.p2pe import P2peSettings, PaymentCryptography
from cloud.store import Store
from cloud.tables import TableNames
from cloud.trust import CRL_ENV, trust_from_env
from wire.keys import CachingUnwrapper

_consumer: Consumer | None = None
_metrics: PowertoolsMetrics | None = None
_publisher: FairRatePublisher | None = None

log = structlog.get_logger("posd.cloud")


def consumer_from_env(env: Mapping[str, str] = os.environ) -> Consumer:
    bus_name = env.get("ALARM_BUS_NAME")
    if not bus_name:
        raise ConsumerConfigError("the environment lacks ALARM_BUS_NAME")
    settings = ConsumerSettings(
        gap_grace_seconds=_seconds(env, "GAP_GRACE_SECONDS", DEFAULT_GAP_GRACE_SECONDS),
        checkpoint_silence_seconds=_seconds(
            env, "CHECKPOINT_SILENCE_SECONDS", DEFAULT_CHECKPOINT_SILENCE_SECONDS
        ),
    )
    client: Any = boto3.client
    store = Store(client("dynamodb"), TableNames.from_env(env))
    global _metrics, _publisher
    _metrics = PowertoolsMetrics()
    _publisher = publisher_from_env(env, ssm=client("ssm"), store=store)
    return Consumer(
        store,
        Alarms(store, AlarmBus(client("events"), bus_name), _metrics),
        CachingUnwrapper(KmsUnwrapper(client("kms"))),
        trust_from_env(env, client("ssm") if env.get(CRL_ENV) else None),
        settings,
        p2pe=PaymentCryptography(client(P2PE_SERVICE), P2peSettings.from_env(env)),
    )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # NaN too
        raise ConsumerConfigError(f"{name} must be a number of seconds >= 0, got {text!r}")
    return value


def lambda_handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    global _consumer
    if _consumer is None:
        _consumer = consumer_from_env()
    try:
        if "Records" in event:
            answer = _consumer.handle_sqs(event)
            _publish_fair_rate(scheduled=False)
            return answer
        closed = _consumer.recheck_open()
        _publish_fair_rate(scheduled=True)
        return {"closed": closed}
    finally:
        if _metrics is not None:
            _metrics.flush()


def _publish_fair_rate(*, scheduled: bool) -> None:
    """The schedule's second job, and the SQS batches' at most every
    `cloud.fair_rate.REPUBLISH_SECONDS` (the lanes still draining get the share of those that
    finished); a failure is logged and tried again at the next (the lanes keep the rate
    published last)."""
    if _publisher is None:
        return
    try:
        if scheduled:
            _publisher.publish()
        else:
            _publisher.publish_if_due()
    except (BotoCoreError, ClientError) as error:
        log.warning("cloud.fair_rate_not_published", error=type(error).__name__, reason=str(error))
