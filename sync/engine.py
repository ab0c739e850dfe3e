"""The delivery engine: journal outbox -> EventBridge PutEvents.

One driver thread (the caller of `run` or `drain`) owns every outbox call, so the journal's
SQLite connection is used from one thread only; a small thread pool does nothing but HTTP.
Each round the driver collects finished requests (marking all accepted records delivered in
one short transaction), leases due records in seq order, splits them into size- and
count-bounded requests and keeps up to the AIMD window of requests in flight.

Delivery is at least once: a record is marked delivered only after its own entry was
accepted; a crash or a lost response before that leaves it pending (or leased until the lease
expires) and it is sent again with the same `event_id`, which consumers dedupe on. Requests
answered after the read timeout were probably applied: a `TimeoutAdapter` then lengthens the
read timeout and shrinks the requests (and the window shrinks), so that a slow endpoint costs
a few copies instead of an endless stream of them.

Retention: a delivered record is erased after `retention_seconds`, and with
`acknowledged_retention` only once the cloud has proven it (its seq at or below the journal's
proven watermark, sync/acknowledgement.py), or once it was delivered
`max_unacknowledged_seconds` ago, proven or not (the cloud's dead-letter queue has let it go).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import TracebackType

import structlog

from sync.acknowledgement import Acknowledgements
from sync.errors import EventBuildError
from sync.eventbridge.batching import plan_batches
from sync.eventbridge.results import judge
from sync.eventbridge.retry import (
    MISCONFIGURED,
    READ_TIMEOUT,
    RetryPolicy,
    Throttled,
    unexpected_error,
)
from sync.eventbridge.transport import Answered, ClientSource, SendResult, put_batch
from sync.eventbridge.v2 import API_V2, event_group_id
from sync.events import Entry, EventBuilder
from sync.fair_rate_refresh import FairRateRefresh
from sync.outbox import Delivered, Outbox, OutboxRecord, Quarantined
from sync.pacing.backoff import FullJitterBackoff
from sync.pacing.lane import HELD_BATCH_MAX_LEASE_FRACTION, LanePacer, rate_wait
from sync.pacing.link import LinkMonitor
from sync.pacing.timeouts import TimeoutAdapter
from sync.settings import SyncSettings
from sync.side_events import SideEventSender, SideOrigin
from sync.status import DrainProgress, DrainReport, SyncStatus
from sync.timestamps import age_seconds
from sync.watermarks import WatermarkTable
from wire.signing import Signer

STATUS_REFRESH_SECONDS = 1.0
# `Outbox.summary` reads the backlog (counts, pending amounts), at a CPU cost that grows with
# the pending records: refreshed every second during a long drain, it took a large share of
# the driver's CPU (bench/drain.py; the figures are in docs/performance.md).
# The interval stretches so that the refresh takes at most this share of the time, up to a
# cap. The engine keeps `pending` current itself for what it delivers; the refresh catches
# captures and other processes.
STATUS_REFRESH_MAX_SHARE = 0.02
STATUS_REFRESH_MAX_SECONDS = 30.0
HELD_TOO_LONG = "held too long before sending: lease handed back"
OVERSIZE_REASON = "EventTooLarge: {size} bytes exceed max_request_bytes {limit}"

log = structlog.get_logger("posd.sync")


@dataclass(frozen=True)
class _Held:
    entries: list[Entry]
    leased_at: float


@dataclass(frozen=True)
class _Flight:
    entries: list[Entry]
    ticket: int  # of the concurrency window
    generation: int  # of the timeout adapter
    sent_at: float


class SyncEngine:
    """Delivers an `Outbox` to EventBridge. Use `run()` in a daemon thread or `drain()`."""

    def __init__(
        self,
        outbox: Outbox,
        clients: ClientSource,
        settings: SyncSettings,
        *,
        store_id: str,
        terminal_id: str,
        clock: Callable[[], float] = time.time,
        watermarks: WatermarkTable | None = None,
        signer: Signer | None = None,
        fair_rate: Callable[[], float | None] | None = None,
        real_seconds: Callable[[float], float] = float,
    ) -> None:
        """`watermarks`: where the cloud publishes this lane's proven watermarks; without it
        (and with `acknowledged_retention`) nothing is proven, and delivered records go only
        after `max_unacknowledged_seconds`. `fair_rate`: the fair rate the cloud publishes
        for each lane (entries/s; None: not known), read when the engine starts and when the
        link comes back, and re-read off the driver every `fair_rate_reread_seconds` while a
        backlog drains; before `[sync]`'s fleet settings (`sync.pacing.lane.configured_share`).
        `clock` times everything; `real_seconds` turns a wait on it into real seconds (a
        rehearsal's faster clock, sync/clock.py)."""
        self._outbox = outbox
        self._journal_id = outbox.journal_id
        self._clients = clients
        self._settings = settings
        self._clock = clock
        self._real_seconds = real_seconds
        self._builder = EventBuilder(
            store_id,
            terminal_id,
            settings.source,
            settings.event_bus_name,
            outbox.journal_id,
            event_group_id(store_id, terminal_id) if settings.api == API_V2 else None,
        )
        self._retry_backoff = FullJitterBackoff(
            settings.backoff_base_seconds, settings.backoff_cap_seconds
        )
        self._pacer = LanePacer(settings, clock(), RetryPolicy(self._retry_backoff))
        self._fair_rate = fair_rate
        self._fair_rate_refresh = (
            None
            if fair_rate is None
            else FairRateRefresh(fair_rate, settings.fair_rate_reread_seconds, clock())
        )
        self._started = False
        self._link = LinkMonitor(
            settings.offline_after_failures,
            failure_backoff=self._retry_backoff,
            probe_backoff=FullJitterBackoff(
                settings.probe_min_seconds, settings.probe_max_seconds - settings.probe_min_seconds
            ),
            probe_min_seconds=settings.probe_min_seconds,
        )
        self._rate_delay = 0.0  # seconds until the rate limiter lets the next batch go
        self._timeouts = TimeoutAdapter(
            settings.read_timeout_seconds,
            settings.max_read_timeout_seconds,
            settings.max_entries_per_request,
        )
        self._side = SideEventSender(
            outbox,
            clients,
            SideOrigin(
                settings.source,
                settings.event_bus_name,
                store_id,
                terminal_id,
                outbox.journal_id,
                signer,
            ),
            settings.read_timeout_seconds,
            self._retry_backoff,
        )
        self._acks = Acknowledgements(
            watermarks if settings.acknowledged_retention else None,
            settings.watermark_poll_seconds,
            clock,
        )
        self._pool = ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="sync-put")
        self._in_flight: dict[Future[SendResult], _Flight] = {}
        self._held: deque[_Held] = deque()
        self._lease_was_empty = False
        self._stop = threading.Event()
        self._checkpoint_wanted = threading.Event()  # checkpoint_now(): cut one next round
        self._lock = threading.Lock()
        self._delivered = 0
        self._quarantined = 0
        self._tampered = 0
        self._pending = 0
        self._quarantined_total = 0
        self._oldest_pending: str | None = None
        self._next_status_at = 0.0
        self._next_purge_at = 0.0

    # --- public API -------------------------------------------------------------------

    def run(self) -> None:
        """Deliver until `stop()`; then finish the requests in flight and return."""
        self._stop.clear()
        self._start(self._clock())
        while not self._stop.is_set():
            self._round(self._clock())
            self._wait()
        self._settle()

    def stop(self) -> None:
        """Ask `run`/`drain` to return (thread-safe); requests in flight are finished."""
        self._stop.set()

    def checkpoint_now(self) -> None:
        """Cut a checkpoint over everything appended so far at the next round, whatever the
        timer says (thread-safe): a flush asks for it, so that once delivered the cloud can
        prove the whole journal, not only what the last timed or counted checkpoint covered."""
        self._checkpoint_wanted.set()

    def drain(
        self,
        timeout: float | None = None,
        progress: Callable[[DrainProgress], None] | None = None,
        checkpoint: bool = False,
    ) -> DrainReport:
        """Deliver until nothing is pending (quarantined records aside), `timeout` or `stop()`,
        or until the configuration is refused (`misconfigured`: no retry would help).

        Records waiting out a backoff are waited for; an offline link is probed meanwhile.
        With `checkpoint`, a checkpoint over everything appended so far is cut first
        (`checkpoint_now`) and delivered with them (a technician's flush: the cloud can then
        prove the whole journal).
        """
        start = time.monotonic()
        delivered0, quarantined0 = self._delivered, self._quarantined
        self._stop.clear()
        if checkpoint:
            self.checkpoint_now()
        self._start(self._clock())
        completed = False
        while not self._stop.is_set():
            self._round(self._clock())
            if progress is not None:
                progress(self._progress(delivered0, quarantined0))
            if self._idle() and self._refresh_status(self._clock()) == 0:
                completed = True
                break
            if self._link.misconfigured:
                break
            if timeout is not None and time.monotonic() - start >= timeout:
                break
            self._wait()
        self._settle()
        pending = self._refresh_status(self._clock())
        if progress is not None:
            progress(self._progress(delivered0, quarantined0))
        return DrainReport(
            completed=completed and pending == 0,
            delivered=self._delivered - delivered0,
            quarantined=self._quarantined - quarantined0,
            pending=pending,
            elapsed_seconds=time.monotonic() - start,
            state=self._link.state,
        )

    def status(self) -> SyncStatus:
        """A consistent snapshot; safe to call from any thread."""
        now = self._clock()
        with self._lock:
            link = self._link.snapshot()
            timeouts = self._timeouts.snapshot()
            return SyncStatus(
                state=link.state,
                offline_since=link.offline_since,
                last_success=link.last_success,
                last_error=link.last_error,
                pending=self._pending,
                quarantined=self._quarantined_total,
                oldest_pending_age_seconds=age_seconds(self._oldest_pending, now),
                in_flight=len(self._in_flight),
                in_flight_limit=self._allowed_in_flight(),
                delivered_since_start=self._delivered,
                quarantined_since_start=self._quarantined,
                tampered_since_start=self._tampered,
                read_timeout_seconds=timeouts.read_timeout_seconds,
                entries_per_request=timeouts.entries_per_request,
                slow_endpoint=timeouts.timeouts_in_streak > 0,
                acknowledged=self._acks.snapshot(),
            )

    def purge(self) -> int:
        """Purge records delivered longer than the retention window ago, now: with
        `acknowledged_retention` those the cloud has proven, and those delivered longer than
        `max_unacknowledged_seconds` ago (with a warning). Returns how many were erased."""
        now = self._clock()
        settings = self._settings
        self._next_purge_at = now + settings.purge_interval_seconds
        retained_from = now - settings.retention_seconds
        if not settings.acknowledged_retention:
            return self._outbox.purge_delivered(retained_from)
        proven = self._acks.proven_seq(self._journal_id)
        erased = 0 if proven is None else self._outbox.purge_delivered(retained_from, proven)
        # Whatever this pass erases the first could not: all of it above the watermark.
        unproven = self._outbox.purge_delivered(now - settings.max_unacknowledged_seconds)
        if unproven:
            log.warning(
                "sync.purged_unacknowledged",
                journal_id=self._journal_id,
                records=unproven,
                proven_seq=proven,
                max_unacknowledged_seconds=settings.max_unacknowledged_seconds,
            )
        return erased + unproven

    def close(self) -> None:
        """Stop, finish the requests in flight, and release every lease: records leased but
        not sent are due again at once for the next engine (not after `lease_seconds`)."""
        self._stop.set()
        self._settle()
        self._pool.shutdown(wait=True)
        if self._fair_rate_refresh is not None:
            self._fair_rate_refresh.close()
        self._side.close(self._clock())
        try:
            released = self._outbox.release_leases()
        except Exception as error:  # noqa: BLE001 - an optimisation: never fail the stop
            # (a damaged file): the leases simply run out, nothing is lost.
            log.warning("sync.leases_not_released", error=f"{type(error).__name__}: {error}")
            return
        if released:
            log.info("sync.leases_released", records=released)

    def __enter__(self) -> SyncEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- one round ----------------------------------------------------------------------

    def _round(self, now: float) -> None:
        delivered = self._collect([f for f in self._in_flight if f.done()], now)
        try:
            wanted = self._checkpoint_wanted.is_set()
            self._checkpoint_wanted.clear()
            if self._outbox.cut_checkpoint(now, force=wanted):
                self._side.raised()
            self._side.collect(now)
            if self._side.due(now) and not self._link.probing and self._link.may_send(now):
                self._side.send(now)
            self._reread_fair_rate(now)
            # Freed slots are refilled before the delivered marks are written: the requests
            # go out while the journal commits (measured: bench/drain.py).
            self._fill(now)
        finally:
            self._record_delivered(delivered, now)
        if self._settings.acknowledged_retention:
            self._acks.poll(self._journal_id, now)
        if now >= self._next_purge_at:
            self.purge()
        if now >= self._next_status_at:
            self._refresh_status(now)

    def _start(self, now: float) -> None:
        """Once per engine: read the backlog, and start at the lane's share if known."""
        backlog = self._refresh_status(now)
        if not self._started:
            self._started = True
            with self._lock:
                self._pacer.started(now, self._published_rate(), backlog)

    def _reread_fair_rate(self, now: float) -> None:
        """While draining, take up a re-read fair rate (read in the background)."""
        if self._fair_rate_refresh is None:
            return
        draining = self._pending > 0 and not self._link.probing
        rate = self._fair_rate_refresh.poll(now, draining)
        if rate is not None:
            with self._lock:
                self._pacer.share_changed(now, rate, self._pending)

    def _published_rate(self) -> float | None:
        """The fair rate the cloud publishes for each lane (None: not known)."""
        if self._fair_rate is None:
            return None
        try:
            return self._fair_rate()
        except Exception as error:  # noqa: BLE001 - a missing figure must not stop delivery
            log.warning("sync.fair_rate_unreadable", error=f"{type(error).__name__}: {error}")
            return None

    def _idle(self) -> bool:
        return not self._in_flight and not self._held and self._lease_was_empty and self._side.idle

    def _wait(self) -> None:
        timeout = self._settings.idle_poll_seconds
        if self._rate_delay > 0:
            timeout = rate_wait(self._rate_delay, timeout)
        # The side lane's request wakes the driver too: a backlog of checkpoints goes out one
        # request per answer, not one per poll interval.
        futures = [*self._in_flight, *self._side.in_flight()]
        if futures:
            wait(futures, timeout=self._real_seconds(timeout), return_when=FIRST_COMPLETED)
        else:
            until_send = self._link.next_send_at() - self._clock()
            pause = max(0.0, min(timeout, until_send)) if until_send > 0 else timeout
            self._stop.wait(self._real_seconds(pause))

    def _settle(self) -> None:
        """Wait for the requests in flight (bounded by the client timeouts) and record them."""
        if self._in_flight:
            wait(list(self._in_flight))
            now = self._clock()
            self._record_delivered(self._collect(list(self._in_flight), now), now)
        self._held.clear()  # their leases expire and they come back; nothing is lost

    def _allowed_in_flight(self) -> int:
        return self._pacer.allowed_in_flight(self._link.probing)

    # --- sending ------------------------------------------------------------------------

    def _fill(self, now: float) -> None:
        self._rate_delay = 0.0  # what a batch waits for the rate limiter: unknown until asked
        if not self._link.may_send(now):
            return
        while len(self._in_flight) < self._allowed_in_flight():
            held = self._next_batch(now)
            if held is None:
                return
            grant = self._pacer.grant(len(held.entries), now)
            self._rate_delay = grant.wait_seconds
            if not grant.entries:
                return  # no prefetch either: the held batch waits for the rate limiter
            self._held.popleft()
            batch = held.entries[: grant.entries]
            if len(batch) < len(held.entries):  # slow start: the rest stays first in line
                self._held.appendleft(_Held(held.entries[grant.entries :], held.leased_at))
            ticket = self._pacer.sent(len(batch), now)
            client = self._clients(self._timeouts.read_timeout)
            request = [entry.request_entry for entry in batch]
            future = self._pool.submit(put_batch, client, request)
            with self._lock:
                self._in_flight[future] = _Flight(batch, ticket, self._timeouts.generation, now)
        # Prefetch while the requests are out, so that a freed slot is refilled at once
        # instead of waiting for a lease and event building (bench/drain.py; the gain is in
        # docs/performance.md).
        if len(self._held) < self._allowed_in_flight():
            self._lease(now)

    def _next_batch(self, now: float) -> _Held | None:
        """The next held batch (left held), leasing more when none is."""
        max_age = self._settings.lease_seconds * HELD_BATCH_MAX_LEASE_FRACTION
        while self._held and now - self._held[0].leased_at > max_age:
            # Due again now rather than when the lease runs out (a batch leased before the
            # rate limiter cut the rate can outwait half a lease).
            stale = self._held.popleft()
            self._outbox.schedule_retry([e.record.seq for e in stale.entries], now, HELD_TOO_LONG)
        if not self._held:
            self._lease(now)
        return self._held[0] if self._held else None

    def _lease(self, now: float) -> None:
        settings = self._settings
        per_request = self._timeouts.entries_per_request
        limit = self._pacer.lease_limit(self._link.probing, per_request, now)
        lease = self._outbox.lease(limit, now, settings.lease_seconds)
        for refused in lease.quarantined:
            self._note_outbox_quarantine(refused)
        self._lease_was_empty = not lease.records and not lease.quarantined
        entries = [entry for entry in map(self._build, lease.records) if entry is not None]
        plan = plan_batches(entries, lambda e: e.size, per_request, settings.max_request_bytes)
        for entry in plan.oversize:
            reason = OVERSIZE_REASON.format(size=entry.size, limit=settings.max_request_bytes)
            self._quarantine(entry.record, reason)
        self._held.extend(_Held(batch, now) for batch in plan.batches)

    def _build(self, record: OutboxRecord) -> Entry | None:
        try:
            return self._builder.build(record)
        except EventBuildError as error:
            self._quarantine(record, f"EventBuildError: {error}")
            return None

    # --- results ------------------------------------------------------------------------

    def _collect(self, done: Sequence[Future[SendResult]], now: float) -> list[Delivered]:
        """Settle finished requests; returns the accepted records, for `_record_delivered`
        (retries and quarantines are written here)."""
        delivered: list[Delivered] = []
        for future in done:
            with self._lock:
                flight = self._in_flight.pop(future)
            delivered.extend(self._settle_flight(flight, _result_of(future), now))
        return delivered

    def _record_delivered(self, delivered: Sequence[Delivered], now: float) -> None:
        """Mark accepted records delivered, in one transaction. Until then they stay leased,
        so no lease hands them out again."""
        if delivered:
            self._outbox.mark_delivered(delivered, now)
            with self._lock:
                self._delivered += len(delivered)
                self._pending = max(0, self._pending - len(delivered))

    def _settle_flight(self, flight: _Flight, result: SendResult, now: float) -> list[Delivered]:
        records = [entry.record for entry in flight.entries]
        # Link and window change under the lock: status() reads them from other threads.
        if isinstance(result, Answered):
            with self._lock:
                back_online = self._link.record_success(now)
                timeouts_ended = self._timeouts.on_answer(now - flight.sent_at)
            if back_online:
                published = self._published_rate()
                if self._fair_rate_refresh is not None:
                    self._fair_rate_refresh.read_at_once(now)
                with self._lock:
                    self._pacer.reconnected(now, published, self._pending)
                share = self._pacer.share(published)
                log.info("sync.online", pending=self._pending, share_per_second=share)
            if timeouts_ended:
                log.info("sync.endpoint_answering", read_timeouts=timeouts_ended)
            verdict = judge(records, result.results)
            if verdict.misconfigured:
                refused = [record for record, _ in verdict.misconfigured]
                self._refused_config(refused, now, verdict.misconfigured[0][1])
            for record, reason in verdict.quarantine:
                self._quarantine(record, reason)
            with self._lock:
                self._pacer.answered(
                    flight.ticket, len(records), len(verdict.delivered), verdict.throttled, now
                )
            for error, group in _group_by_error(verdict.retry).items():
                throttled = error in verdict.throttled_reasons
                self._retry_later(group, now, error, throttled=throttled)
            return verdict.delivered
        if isinstance(result, Throttled):
            with self._lock:
                self._pacer.request_throttled(flight.ticket, len(records), now)
            self._retry_later(records, now, result.error, throttled=True)
            return []
        self._pacer.unanswered()
        if result.kind == MISCONFIGURED:
            self._refused_config(records, now, result.error)
            return []
        if result.kind == READ_TIMEOUT:
            self._adapt_to_read_timeout(flight)
        with self._lock:
            went_offline = self._link.record_failure(now, f"{result.kind}: {result.error}")
        if went_offline:
            log.warning(
                "sync.offline", error=result.error, failures=self._link.consecutive_failures
            )
        # The link gate paces the resend; the records are due again at once.
        self._outbox.schedule_retry([r.seq for r in records], now, f"{result.kind}: {result.error}")
        return []

    def _adapt_to_read_timeout(self, flight: _Flight) -> None:
        """Sent, but answered too late (or never): longer timeout, smaller requests, fewer
        in flight. Logged once per streak of timeouts, not once per request."""
        with self._lock:
            streak_started = self._timeouts.on_read_timeout(flight.generation)
            self._pacer.congested(flight.ticket)
            adapted = self._timeouts.snapshot()
            in_flight_limit = self._pacer.window.limit
        if streak_started:
            log.warning(
                "sync.slow_endpoint",
                read_timeout_seconds=adapted.read_timeout_seconds,
                entries_per_request=adapted.entries_per_request,
                in_flight_limit=in_flight_limit,
            )

    def _refused_config(self, records: Sequence[OutboxRecord], now: float, error: str) -> None:
        """The configuration was refused: say so at once, keep the records pending."""
        with self._lock:
            changed = self._link.record_misconfigured(now, f"{MISCONFIGURED}: {error}")
        if changed:
            log.error("sync.misconfigured", error=error)
        self._outbox.schedule_retry([r.seq for r in records], now, f"{MISCONFIGURED}: {error}")

    def _retry_later(
        self, records: Sequence[OutboxRecord], now: float, error: str, *, throttled: bool = False
    ) -> None:
        """Due again when the retry policy says (sync/eventbridge/retry.py)."""
        attempt = max(record.attempts for record in records) + 1
        delay = self._pacer.retry_delay(attempt, throttled)
        self._outbox.schedule_retry([r.seq for r in records], now + delay, error)

    def _quarantine(self, record: OutboxRecord, reason: str) -> None:
        self._outbox.quarantine(record.seq, reason)
        log.warning("sync.quarantined", seq=record.seq, event_id=record.event_id, reason=reason)
        with self._lock:
            self._quarantined += 1

    def _note_outbox_quarantine(self, refused: Quarantined) -> None:
        """Count and log a record the journal refused to lease (unreadable or tampered)."""
        if refused.tampered:
            log.error("sync.alarm.tampered_record", seq=refused.seq, reason=refused.reason)
            self._side.raised()
        else:
            log.warning("sync.quarantined", seq=refused.seq, reason=refused.reason)
        with self._lock:
            self._quarantined += 1
            self._tampered += 1 if refused.tampered else 0

    # --- status -------------------------------------------------------------------------

    def _refresh_status(self, now: float) -> int:
        started = time.perf_counter()
        summary = self._outbox.summary()
        cost = time.perf_counter() - started
        with self._lock:
            self._pending = summary.pending
            self._quarantined_total = summary.quarantined
            self._oldest_pending = summary.oldest_pending_captured_at
        interval = min(
            STATUS_REFRESH_MAX_SECONDS, max(STATUS_REFRESH_SECONDS, cost / STATUS_REFRESH_MAX_SHARE)
        )
        self._next_status_at = now + interval
        return summary.pending

    def _progress(self, delivered0: int, quarantined0: int) -> DrainProgress:
        with self._lock:
            return DrainProgress(
                self._delivered - delivered0, self._quarantined - quarantined0, self._pending
            )


def _result_of(future: Future[SendResult]) -> SendResult:
    """`put_batch` never raises for network or service trouble; anything else is a bug in the
    client stack, and it must not kill the engine (`unexpected_error`)."""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - see docstring
        return unexpected_error(error)


def _group_by_error(
    items: Sequence[tuple[OutboxRecord, str]],
) -> dict[str, list[OutboxRecord]]:
    groups: dict[str, list[OutboxRecord]] = {}
    for record, error in items:
        groups.setdefault(error, []).append(record)
    return groups
