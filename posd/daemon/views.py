"""What the daemon says about the lane: `GET /v1/status`, `POST /v1/sync/flush`, the metrics'
scrape-time state and systemd's one-line STATUS=, read from the running parts."""

from __future__ import annotations

import time
from collections.abc import Callable

from posd.api_answers import (
    AcknowledgedAnswer,
    FlushAnswer,
    InFlightAnswer,
    LaneStateName,
    RefusalAnswer,
    StatusAnswer,
)
from posd.config import Config, OfflineLimits
from posd.daemon.lane import Lane
from posd.daemon.limits import (
    Backlog,
    backlog_of,
    every_payment_refusal,
    headroom,
    needs_backlog,
)
from posd.daemon.metrics import LaneState
from posd.daemon.payments import RuntimeRules
from posd.daemon.refusals import DISK_BELOW_RESERVE, JOURNAL_FULL, NO_DATA_KEY
from posd.daemon.supervisor import DeviceSupervisor
from posd.errors import DiskBelowReserveError
from posd.journal import Journal
from posd.keys.provider import RotatingKeyProvider
from posd.syncd.flushing import cut_and_wait
from posd.syncd.status_file import DeliveryPeer
from posd.version import posd_version
from sync.acknowledgement import Acknowledgement
from sync.clock import SYSTEM, Clock
from sync.pacing.link import PROBING_STATES
from sync.timestamps import rfc3339

ONLINE = "online"


class _LinkWatch:
    """The link state and since when (the engine knows when it went offline, not online)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock  # the journal's: a rehearsal's link changes on its simulated time
        self.state: str | None = None
        self.since = clock()

    def update(self, state: str) -> None:
        if state != self.state:
            self.state, self.since = state, self._clock()


def acknowledged_answer(acknowledged: Acknowledgement) -> AcknowledgedAnswer:
    """The proven watermark as status shows it (times in RFC 3339)."""
    checked_at = acknowledged.checked_at
    return {
        "journal_id": acknowledged.journal_id,
        "proven_seq": acknowledged.proven_seq,
        "checked_at": None if checked_at is None else rfc3339(checked_at),
        "error": acknowledged.error,
    }


def lane_state(closed: bool, refusal: RefusalAnswer | None, devices_up: bool) -> LaneStateName:
    """What `GET /v1/status` calls the lane: `not_ready` while every payment is refused
    (`refusal` names the code they all get and why), `degraded` while a device is down."""
    if closed:
        return "shutting_down"
    if refusal is not None:
        return "not_ready"
    return "ready" if devices_up else "degraded"


def refusing(journal: Journal, keys: RotatingKeyProvider) -> RefusalAnswer | None:
    """The refusal every payment gets now and its cause, or None: the same errors the capture
    path turns into refusals (`posd.daemon.payments`), asked without taking a payment."""
    space = journal.space_refusal()
    if isinstance(space, DiskBelowReserveError):
        return {"error": DISK_BELOW_RESERVE, "message": str(space)}
    if space is not None:
        return {"error": JOURNAL_FULL, "message": str(space)}
    no_key = keys.unavailable()
    if no_key is not None:
        return {"error": NO_DATA_KEY, "message": str(no_key)}
    return None


def limit_refusal(limits: OfflineLimits, backlog: Backlog) -> RefusalAnswer | None:
    """The refusal every payment gets from a used-up offline limit, or None."""
    refusal = every_payment_refusal(limits, backlog)
    return None if refusal is None else {"error": refusal.code, "message": refusal.message}


class LaneViews:
    def __init__(
        self,
        config: Config,
        journal: Journal,
        keys: RotatingKeyProvider,
        devices: DeviceSupervisor,
        lane: Lane,
        delivery: DeliveryPeer,
        rules: Callable[[], RuntimeRules],
        clock: Clock = SYSTEM,
    ) -> None:
        self._config = config
        self._clock = clock
        self._journal = journal
        self._keys = keys
        self._devices = devices
        self._lane = lane
        self._delivery = delivery
        self._rules = rules
        self._link = _LinkWatch(clock.time)
        self._started = time.monotonic()

    def link_state(self) -> str:
        state = self._delivery.status().state
        self._link.update(state)
        return state

    def link_offline(self) -> bool:
        """Known not to deliver (offline or misconfigured); `unknown` is not offline."""
        return self.link_state() in PROBING_STATES

    def summary_line(self) -> str:
        """systemd's one-line STATUS=."""
        # The engine's count (refreshed every second): a summary of our own would scan every
        # record at each tick.
        pending = self._delivery.status().pending
        devices = ", ".join(
            f"{name} {'ok' if up else 'DOWN'}" for name, up in self._devices.connected().items()
        )
        line = f"link {self.link_state()}, {pending} pending, devices: {devices or 'none'}"
        refusal = refusing(self._journal, self._keys) or self._bound_limit_refusal()
        # `systemctl status` shows this line: a lane that cannot sell must say so there too.
        return line if refusal is None else f"{line}; REFUSING PAYMENTS: {refusal['error']}"

    def _bound_limit_refusal(self) -> RefusalAnswer | None:
        """A used-up limit from the journal's free backlog bound (the main loop takes an
        exact summary every second while a limit needs the backlog, so the bound is at most
        that stale; without one, no scan here: the next line says it)."""
        limits = self._rules().limits
        bound = self._journal.backlog_bound() if needs_backlog(limits) else None
        if bound is None:
            return None
        return limit_refusal(limits, backlog_of(bound, self._journal.now()))

    def lane_state(self) -> LaneState:
        backlog = backlog_of(self._journal.summary(), self._journal.now())
        sync = self._delivery.status()
        checkpoints = self._journal.checkpoint_status()
        return LaneState(
            pending=backlog.count,
            oldest_pending_age_seconds=backlog.oldest_age_seconds,
            link_online=self.link_state() == ONLINE,
            devices_connected=self._devices.connected(),
            journal_bytes=self._journal.size_on_disk(),
            delivery_results={
                "delivered": sync.delivered_since_start,
                "quarantined": sync.quarantined_since_start,
                "tampered": sync.tampered_since_start,
            },
            checkpoint_last_seq=checkpoints.last_seq or 0,
            checkpoints_pending=checkpoints.pending,
            append_waits=self._journal.append_waits(),
        )

    def status(self) -> StatusAnswer:
        summary = self._journal.summary()
        backlog = backlog_of(summary, self._journal.now())
        checkpoints = self._journal.checkpoint_status()
        sync = self._delivery.status()
        state = self.link_state()
        connected = self._devices.connected()
        limits = self._rules().limits
        refusal = (
            None
            if self._lane.closed
            else refusing(self._journal, self._keys) or limit_refusal(limits, backlog)
        )
        keys = self._keys.status()
        return {
            "terminal": {
                "store_id": self._config.store_id,
                "terminal_id": self._config.terminal_id,
                "mode": self._config.terminal.mode,
            },
            "version": posd_version(),
            "uptime_seconds": round(time.monotonic() - self._started, 3),
            "state": lane_state(self._lane.closed, refusal, all(connected.values())),
            "not_ready_reason": None if refusal is None else refusal["message"],
            "refusing": refusal,
            "in_flight": self._in_flight(),
            "link": {
                "state": state,
                "since": rfc3339(self._link.since),
                "last_delivery": rfc3339(sync.last_success) if sync.last_success else None,
                "last_error": sync.last_error,
            },
            "delivery": self._delivery.presence().answer(),
            "pending": {
                "count": backlog.count,
                "amount_by_currency": dict(backlog.amount_by_currency),
                "oldest_age_seconds": None
                if backlog.oldest_age_seconds is None
                else round(backlog.oldest_age_seconds, 3),
            },
            "quarantined": summary.quarantined,
            "tampered": summary.tampered,
            "unreadable": summary.unreadable,
            "checkpoints": {"last_seq": checkpoints.last_seq, "pending": checkpoints.pending},
            "acknowledged": acknowledged_answer(sync.acknowledged),
            "devices": {name: ("connected" if up else "down") for name, up in connected.items()},
            "key_source": keys["source"],
            "key_error": keys["last_error"] if keys["primary_failures"] else None,
            "limits": headroom(limits, backlog),
            "clock": self._clock.describe(),
        }

    def _in_flight(self) -> InFlightAnswer | None:
        """The attempt the lane holds now, so a register that lost its client_ref can cancel."""
        current = self._lane.current()
        if current is None:
            return None
        request = current.request
        return {
            "client_ref": request.client_ref,
            "method": request.method,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
        }

    def flush(self, timeout: float) -> FlushAnswer:
        """Wait (up to `timeout`) for the delivery daemon to empty the backlog, with a
        checkpoint over all of it (`posd.syncd.flushing`). Ends at once while the link is
        `misconfigured` or no delivery daemon runs, and the answer says so with the error."""
        outcome = cut_and_wait(
            self._journal, self.link_state, lambda: self._delivery.presence().running, timeout
        )
        return {
            "completed": outcome.completed,
            "pending": outcome.pending,
            "waited_seconds": round(outcome.waited_seconds, 3),
            "link_state": self.link_state(),
            "last_error": self._delivery.status().last_error,
        }
