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
from cloud.store import Store

CONSUMER_ALARM_SOURCE = "posd.consumer"
CONSUMER_ALARM_DETAIL_TYPE = "posd.consumer.alarm"
CONSUMER_ALARM_SCHEMA = "posd.consumer.alarm/1"
RECORD_REJECTED = "record_rejected"
GAP = "gap"
CHAIN_MISMATCH = "chain_mismatch"

log = structlog.get_logger("cloud.alarms")


class AlarmNotPublished(ConsumerError):
    code = "alarm_not_published"


@dataclass(frozen=True)
class AlarmBus:
    events: Any  # a boto3 EventBridge client
    bus_name: str
    source: str = CONSUMER_ALARM_SOURCE


class Alarms:
    def __init__(self, store: Store, bus: AlarmBus) -> None:
        self._store = store
        self._bus = bus

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
        log.warning("cloud.alarm", alarm=alarm, alarm_id=alarm_id)
        return True
