"""Alarms to the cloud: delivered like events, in their own small lane.

A record that failed its integrity check is quarantined, never forwarded; the journal keeps an
alarm for it (seq and what failed, no payload) and the engine sends each alarm as one
EventBridge event (`DetailType` `posd.alarm`, schema `posd.alarm/1`) until it is accepted. The
lane is tiny and rare, so alarms go out synchronously, a batch per round at most, with their
own backoff; they never wait behind a backlog of records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from sync.backoff import FullJitterBackoff
from sync.events import detail_json, parse_captured_at
from sync.outbox import Alarm, Outbox
from sync.transport import Answered, ClientSource, put_batch

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

ALARM_SCHEMA = "posd.alarm/1"
ALARM_DETAIL_TYPE = "posd.alarm"
ALARMS_PER_REQUEST = 10  # PutEvents' entry limit; alarms are small

log = structlog.get_logger("sync.alarms")


@dataclass(frozen=True)
class AlarmOrigin:
    """Who raises the alarms: the same fields every event of this terminal carries."""

    source: str
    event_bus_name: str
    store_id: str
    terminal_id: str
    journal_id: str


def alarm_entry(alarm: Alarm, origin: AlarmOrigin) -> PutEventsRequestEntryTypeDef:
    detail = {
        "schema": ALARM_SCHEMA,
        "event_id": alarm.event_id,
        "journal_id": origin.journal_id,
        "store_id": origin.store_id,
        "terminal_id": origin.terminal_id,
        "alarm": alarm.kind,
        "seq": alarm.seq,
        "detail": alarm.detail,
        "raised_at": alarm.raised_at,
    }
    return {
        "Source": origin.source,
        "DetailType": ALARM_DETAIL_TYPE,
        "Detail": detail_json(detail),
        "Time": parse_captured_at(alarm.raised_at),
        "EventBusName": origin.event_bus_name,
    }


class AlarmSender:
    """Sends the outbox's pending alarms when due; wakes up when a new one is raised."""

    def __init__(
        self,
        outbox: Outbox,
        clients: ClientSource,
        origin: AlarmOrigin,
        read_timeout_seconds: float,
        backoff: FullJitterBackoff,
    ) -> None:
        self._outbox = outbox
        self._clients = clients
        self._origin = origin
        self._read_timeout = read_timeout_seconds
        self._backoff = backoff
        self._next_at = 0.0  # at start: alarms left by an earlier run go out first
        self._failures = 0
        self._idle = False

    def raised(self) -> None:
        """A new alarm was journaled: send it at the next round."""
        self._idle = False
        self._next_at = 0.0

    def due(self, now: float) -> bool:
        return not self._idle and now >= self._next_at

    def send(self, now: float) -> int:
        """One request with up to ten pending alarms; returns how many were accepted."""
        alarms = self._outbox.pending_alarms(ALARMS_PER_REQUEST)
        if not alarms:
            self._idle = True
            return 0
        entries = [alarm_entry(alarm, self._origin) for alarm in alarms]
        result = put_batch(self._clients(self._read_timeout), entries)
        accepted = _accepted(alarms, result)
        if accepted:
            self._outbox.mark_alarms_sent(accepted, now)
        if len(accepted) < len(alarms):
            self._failures += 1
            self._next_at = now + self._backoff.delay(self._failures)
            log.warning("sync.alarm_not_sent", pending=len(alarms) - len(accepted))
        else:
            self._failures = 0
            log.info("sync.alarms_sent", count=len(accepted))
        return len(accepted)


def _accepted(alarms: Sequence[Alarm], result: object) -> list[int]:
    if not isinstance(result, Answered):
        return []
    return [
        alarm.alarm_id
        for alarm, entry in zip(alarms, result.results, strict=True)
        if not entry.get("ErrorCode")
    ]
