"""Side events to the cloud: alarms and checkpoints, delivered like events in their own lane.

An alarm: a record that failed its integrity check is quarantined, never forwarded; the
journal keeps an alarm for it (seq and what failed, no payload), sent as `DetailType`
`posd.alarm`, schema `posd.alarm/1`. A checkpoint: the journal's statement that a seq range was
issued and what the chain is at both its ends (`posd.journal.checkpoints`), sent as
`posd.checkpoint`, schema `posd.checkpoint/1`. Their Details are the contract's (`wire.events`).
With a signer (the terminal's Roles Anywhere certificate and key, `[identity]`) each Detail
carries a `signature` (`wire.signing`): the cloud believes a checkpoint or an alarm only from
the lane its certificate names. Without one (development) they go unsigned.

Both are journaled, small and few, and each is sent as one EventBridge event until it is
accepted. The lane keeps one request in flight at most, on a thread of its own, through the
same client source as the records, with its own backoff. It never waits behind a backlog of
records and never stalls the engine's driver for a round trip (sent synchronously,
checkpoints cost a share of the drain rate: bench/drain.py). A backlog of side events (after
an outage: one checkpoint per 100 records captured meanwhile) goes out back to back, one
request at a time: paced, such a backlog held a drain long after its records had gone
(bench/cost_growth.py). The figures are in docs/performance.md. Alarms go first.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from sync.eventbridge.transport import Answered, ClientSource, SendResult, put_batch
from sync.events import parse_captured_at
from sync.outbox import Alarm, Outbox, SideEvent
from sync.pacing.backoff import FullJitterBackoff
from wire.events import (
    ALARM_DETAIL_TYPE,
    CHECKPOINT_DETAIL_TYPE,
    AlarmEvent,
    CheckpointEvent,
    Origin,
    alarm_detail,
    checkpoint_detail,
    detail_json,
)
from wire.signing import Signer

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

SIDE_EVENTS_PER_REQUEST = 10  # PutEvents' entry limit; side events are small
# Checkpoints are cut by appends the lane does not hear of: it looks for new ones this often.
RECHECK_SECONDS = 1.0

log = structlog.get_logger("sync.side_events")


@dataclass(frozen=True)
class SideOrigin:
    """Who sends the side events: the same fields every event of this terminal carries."""

    source: str
    event_bus_name: str
    store_id: str
    terminal_id: str
    journal_id: str
    signer: Signer | None = None  # signs each Detail; None: unsigned (development only)


def side_detail(event: SideEvent, origin: SideOrigin) -> dict[str, Any]:
    """The event's Detail (`wire.events`), signed when the origin has a signer. A
    checkpoint's journal_id is the one it was cut in, stored with it; an alarm's is the
    journal's now."""
    detail = _unsigned_detail(event, origin)
    return detail if origin.signer is None else origin.signer.sign(detail)


def _unsigned_detail(event: SideEvent, origin: SideOrigin) -> dict[str, Any]:
    if isinstance(event, Alarm):
        return alarm_detail(
            AlarmEvent(
                Origin(event.event_id, origin.journal_id, origin.store_id, origin.terminal_id),
                event.kind,
                event.seq,
                event.detail,
                event.raised_at,
            )
        )
    return checkpoint_detail(
        CheckpointEvent(
            Origin(event.event_id, event.journal_id, origin.store_id, origin.terminal_id),
            event.first_seq,
            event.last_seq,
            event.count,
            event.chain_before,
            event.chain,
            event.created_at,
        )
    )


def side_entry(event: SideEvent, origin: SideOrigin) -> PutEventsRequestEntryTypeDef:
    if isinstance(event, Alarm):
        detail_type, at = ALARM_DETAIL_TYPE, event.raised_at
    else:
        detail_type, at = CHECKPOINT_DETAIL_TYPE, event.created_at
    return {
        "Source": origin.source,
        "DetailType": detail_type,
        "Detail": detail_json(side_detail(event, origin)),
        "Time": parse_captured_at(at),
        "EventBusName": origin.event_bus_name,
    }


class SideEventSender:
    """Sends the outbox's pending side events when due; wakes up when an alarm is raised or a
    checkpoint cut, and looks for new ones every `RECHECK_SECONDS` anyway.

    The request runs on a thread of its own (one at a time) so the driver never waits a round
    trip for it; the outbox is read and written only from the driver's calls (`send`,
    `collect`), like the engine's."""

    def __init__(
        self,
        outbox: Outbox,
        clients: ClientSource,
        origin: SideOrigin,
        read_timeout_seconds: float,
        backoff: FullJitterBackoff,
    ) -> None:
        self._outbox = outbox
        self._clients = clients
        self._origin = origin
        self._read_timeout = read_timeout_seconds
        self._backoff = backoff
        self._next_at = 0.0  # at start: side events left by an earlier run go out first
        self._failures = 0
        self._idle = False
        # Raised since the pending side events were last read: the request in flight does not
        # hold it, so its answer must not leave the lane idle.
        self._raised = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sync-side")
        self._flight: tuple[Sequence[SideEvent], Future[SendResult]] | None = None

    def raised(self) -> None:
        """A new side event was journaled: send it at the next round."""
        self._idle = False
        self._raised = True
        self._next_at = 0.0

    @property
    def idle(self) -> bool:
        """Nothing in flight, and nothing was waiting when last looked."""
        return self._idle and self._flight is None

    def in_flight(self) -> list[Future[SendResult]]:
        """The request in flight, if any (for the driver to wait on with its own)."""
        return [] if self._flight is None else [self._flight[1]]

    def due(self, now: float) -> bool:
        return self._flight is None and now >= self._next_at

    def send(self, now: float) -> int:
        """Start one request with up to ten pending side events; returns how many."""
        self._raised = False
        events = self._outbox.pending_side_events(SIDE_EVENTS_PER_REQUEST)
        if not events:
            self._idle = True
            self._next_at = now + RECHECK_SECONDS
            return 0
        self._idle = False
        entries = [side_entry(event, self._origin) for event in events]
        client = self._clients(self._read_timeout)
        self._flight = (events, self._pool.submit(put_batch, client, entries))
        return len(events)

    def collect(self, now: float, wait: bool = False) -> int:
        """Settle the request in flight if it is answered (`wait`: wait for it); returns how
        many side events were accepted."""
        if self._flight is None:
            return 0
        events, future = self._flight
        if not (wait or future.done()):
            return 0
        self._flight = None
        try:
            result: object = future.result()
        except Exception as error:  # noqa: BLE001 - a bug in the client stack: retry later
            result = error
        accepted = _accepted(events, result)
        if accepted:
            self._outbox.mark_side_events_sent(accepted, now)
        if len(accepted) < len(events):
            self._failures += 1
            self._next_at = now + self._backoff.delay(self._failures)
            log.warning("sync.side_events_not_sent", pending=len(events) - len(accepted))
            return len(accepted)
        self._failures = 0
        alarms = sum(isinstance(event, Alarm) for event in accepted)
        # An alarm sent is news for the log; checkpoints go out every N records: debug.
        (log.info if alarms else log.debug)(
            "sync.side_events_sent", alarms=alarms, checkpoints=len(accepted) - alarms
        )
        if len(events) < SIDE_EVENTS_PER_REQUEST and not self._raised:  # that was all
            self._idle = True
            self._next_at = now + RECHECK_SECONDS
        else:
            self._next_at = now  # more are (or may be) waiting: the next request next round
        return len(accepted)

    def close(self, now: float) -> None:
        """Settle the request in flight (bounded by the client's timeouts) and stop."""
        self.collect(now, wait=True)
        self._pool.shutdown(wait=True)


def _accepted(events: Sequence[SideEvent], result: object) -> list[SideEvent]:
    if not isinstance(result, Answered):
        return []
    return [
        event
        for event, entry in zip(events, result.results, strict=True)
        if not entry.get("ErrorCode")
    ]
