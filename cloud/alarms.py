"""The consumer's own alarms: a record rejected, a gap, a broken chain.

Each alarm is an EventBridge event (Source `posd.consumer`, DetailType `posd.consumer.alarm`)
on the chain's bus, and an item in the alarms table. An event rather than a CloudWatch metric:
it carries what an operator needs (which terminal, which journal, which seqs), a rule routes
it anywhere (SNS, a ticketing system, a Lambda), and it costs nothing per terminal; a metric
would only say "something, somewhere" and need one dimension per terminal to say more.
`alarm_id` is stable per cause (e.g. `gap:<journal>:<first>-<last>`): re-checks never raise the
same alarm twice from the table's point of view, and receivers dedupe on it if a retry
publishes it again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from cloud.errors import ConsumerError
from cloud.metrics import ALARMS_RAISED, CountingMetrics, MetricSink
from cloud.store import Store

CONSUMER_ALARM_SOURCE = "posd.consumer"
CONSUMER_ALARM_DETAIL_TYPE = "posd.consumer.alarm"
CONSUMER_ALARM_SCHEMA = "posd.consumer.alarm/1"
# What the consumer alarms on (the `alarm` field, and the `Alarm` dimension of the
# `AlarmsRaised` metric: cloud/metrics.py). docs/architecture.md "What holds" says what
# each one means.
RECORD_REJECTED = "record_rejected"  # a record's AEAD or AAD check failed: tampered
FORGED_RECORD = "forged_record"  # a record whose data key does not bind the identity it claims
FORGED_SIGNATURE = "forged_signature"  # a checkpoint or alarm whose signature proves nothing
CONFLICTING_RECORD = "conflicting_record"  # two different records for one event_id or seq
GAP = "gap"  # seqs of a checkpoint's range still missing after the grace period
CHAIN_MISMATCH = "chain_mismatch"  # a range's records do not chain to its checkpoint
EQUIVOCATION = "equivocation"  # a second, different checkpoint for the same start
CHAIN_DISCONTINUITY = "chain_discontinuity"  # a range's chain_before is not the last chain
UNCOVERED_SEQS = "uncovered_seqs"  # seqs no checkpoint covers, after the grace period
CHECKPOINTS_STOPPED = "checkpoints_stopped"  # a lane sends records but no checkpoints
JOURNAL_REPLACED = "journal_replaced"  # a lane started a new journal: the old one's tail
P2PE_REFUSED = "p2pe_refused"  # a record's P2PE block the payment HSM refuses: held, not filed
P2PE_KSN_REUSED = "p2pe_ksn_reused"  # a P2PE block whose KSN another event used: a replay, held
CONSUMER_ALARMS = (
    RECORD_REJECTED,
    FORGED_RECORD,
    FORGED_SIGNATURE,
    CONFLICTING_RECORD,
    GAP,
    CHAIN_MISMATCH,
    EQUIVOCATION,
    CHAIN_DISCONTINUITY,
    UNCOVERED_SEQS,
    CHECKPOINTS_STOPPED,
    JOURNAL_REPLACED,
    P2PE_REFUSED,
    P2PE_KSN_REUSED,
)

log = structlog.get_logger("cloud.alarms")


class AlarmNotPublished(ConsumerError):
    code = "alarm_not_published"


@dataclass(frozen=True)
class AlarmBus:
    events: Any  # a boto3 EventBridge client
    bus_name: str
    source: str = CONSUMER_ALARM_SOURCE


class Alarms:
    def __init__(self, store: Store, bus: AlarmBus, metrics: MetricSink | None = None) -> None:
        self._store = store
        self._bus = bus
        self.metrics = metrics if metrics is not None else CountingMetrics()

    def raise_once(self, alarm_id: str, alarm: str, fields: Mapping[str, Any]) -> bool:
        """Publish and record an alarm unless the table has it; True if raised now.

        Published first, recorded second: a failure in between publishes it again on the
        retry (receivers dedupe on `alarm_id`) rather than recording an alarm no one saw."""
        if self._store.get(self._store.tables.alarms, {"alarm_id": alarm_id}) is not None:
            return False
        raised_at = datetime.now(UTC).isoformat()
        detail = {
            "schema": CONSUMER_ALARM_SCHEMA,
            "alarm_id": alarm_id,
            "alarm": alarm,
            "raised_at": raised_at,
            **fields,
        }
        reply = self._bus.events.put_events(
            Entries=[
                {
                    "Source": self._bus.source,
                    "DetailType": CONSUMER_ALARM_DETAIL_TYPE,
                    "Detail": json.dumps(detail, sort_keys=True),
                    "EventBusName": self._bus.bus_name,
                }
            ]
        )
        if reply.get("FailedEntryCount"):
            raise AlarmNotPublished(f"alarm {alarm_id} was not accepted by the bus")
        self._store.put_new(
            self._store.tables.alarms,
            "alarm_id",
            {
                "alarm_id": alarm_id,
                "alarm": alarm,
                "origin": "consumer",
                "raised_at": raised_at,
                **fields,
            },
        )
        self.metrics.count(ALARMS_RAISED, alarm)
        log.warning("cloud.alarm", alarm=alarm, alarm_id=alarm_id)
        return True
