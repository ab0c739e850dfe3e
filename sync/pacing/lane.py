"""One lane's pacing decisions in one object: what the engine asks before and after each request.

The engine (`sync/engine.py`) and the fleet simulator (`bench/fleet_sim.py`) both drive a
`LanePacer`, so the simulator's lanes decide exactly what a real engine decides: how much to
lease, how many entries may go now (the adaptive rate limiter), how many requests may be in
flight (the AIMD window), when a refused record is due again (the retry policy) and where a
(re)connecting lane starts.

Where a lane starts is the fleet-aware part (issue 25): when the lane's share of the
account's quota is known (`share`, entries/s: a published fair rate, or the configured quota
over the fleet's size, or a configured per-lane rate), the lane starts at that rate instead of
slow-starting from one request, its first request lands at a random moment within the time
its share needs to earn it (so a fleet coming back at once spreads its first requests), and
it probes upward from there along the CUBIC curve. Not known: the slow start of today.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Protocol

from sync.pacing.ratelimit import AdaptiveRateLimiter, Grant
from sync.pacing.window import ConcurrencyWindow
from sync.settings import SyncSettings

# Leased-but-unsent batches are handed back to the journal once they are this fraction of the
# lease old, so a request never starts on a nearly expired lease; no more is leased than the
# rate limiter lets go within that time.
HELD_BATCH_MAX_LEASE_FRACTION = 0.5
# A lane started at its share holds it level (no probing) for a random 0.5 to 1.5 times this
# many recovery times, or until its backlog would be drained at the share if sooner: a fleet
# starting together does not probe together, and a lane that will be done at its share does
# not probe at all (bench/fleet_sim.py: 1,000 lanes of 20 records drained in the ideal time,
# none throttled; shorter levels throttled 6-14%).
SHARE_LEVEL_RECOVERIES = 4.0
# A lane whose share changed while draining holds the new one level for this part of that
# time before probing on (bench/fleet_sim.py, 2,000 and 10,000 lanes of varied backlogs, the
# rate republished every 30 s and re-read every 15 s: at once, 4-5% throttled; the whole
# level, 1.2-1.3x the ideal drain; a quarter, 1.09-1.14x and 3%).
RESHARE_LEVEL_FRACTION = 0.25
# A lane waiting for its rate limiter sleeps at most this long before asking again (the
# engine's other timers, the status refresh and the published rate's re-read, run in its
# rounds: `rate_wait`).
RATE_WAIT_MAX_SECONDS = 5.0


def configured_share(settings: SyncSettings) -> float | None:
    """This lane's share of the account's quota as `[sync]` configures it, entries/s: the
    lane's own rate, else the fleet's quota over its lanes (None: not configured)."""
    if settings.lane_rate_per_second is not None:
        return settings.lane_rate_per_second
    if settings.fleet_quota_per_second is not None and settings.fleet_size is not None:
        return settings.fleet_quota_per_second / settings.fleet_size
    return None


def rate_wait(rate_delay: float, poll: float) -> float:
    """How long an engine whose next batch waits `rate_delay` for the rate limiter sleeps
    before asking it again: half of it, since the rate may grow meanwhile (asked again, the
    limiter answers sooner), but at least an idle `poll`, all of it once under a poll, and at
    most `RATE_WAIT_MAX_SECONDS`. About log2(delay / poll) wakes a request instead of one every
    poll: a lane paced at 0.5 entries/s woke 80 times for each request of 10, and a thousand
    such engines on one host (bench/fleet.py) took half of its two cores doing nothing. An
    infinite delay (the slow start's: until an answer, which wakes the engine anyway) is a
    poll, as before."""
    if rate_delay <= poll or math.isinf(rate_delay):
        return min(rate_delay, poll)
    return min(max(poll, rate_delay / 2), RATE_WAIT_MAX_SECONDS)


class EntryRetry(Protocol):
    """When a refused record is due again (`sync.eventbridge.retry.RetryPolicy`)."""

    def entry_delay(self, attempt: int, *, throttled: bool, rate_limited: bool) -> float: ...


class LanePacer:
    """Window, rate limiter and retry policy of one lane. Not thread-safe: the engine calls it
    under its lock."""

    def __init__(
        self,
        settings: SyncSettings,
        now: float,
        retry: EntryRetry,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._per_request = settings.max_entries_per_request
        self._retry = retry
        self._uniform = uniform
        self.window = ConcurrencyWindow(
            settings.min_in_flight,
            settings.initial_in_flight,
            settings.max_in_flight,
            settings.throttle_decrease_factor,
        )
        self.limiter = AdaptiveRateLimiter(
            now,
            min_rate=settings.rate_min_per_second,
            recovery_seconds=settings.rate_recovery_seconds,
            decrease_factor=settings.rate_decrease_factor,
            min_capacity=settings.max_entries_per_request,
            active=settings.rate_limit,
            full_window=settings.max_in_flight * settings.max_entries_per_request,
            uniform=uniform,
            probe_once=settings.probe_once,
        )

    # --- (re)connecting -------------------------------------------------------------------

    def started(self, now: float, published: float | None, backlog: int) -> None:
        """The engine starts (a daemon start is a reconnect too: the fleet may be coming
        back). `published`: the fair rate the cloud publishes (None: not known)."""
        share = self.share(published)
        if share is None:
            self.limiter.restart(now)  # slow start, the rate measured from now
        else:
            self._start_at_share(now, share, backlog)

    def reconnected(self, now: float, published: float | None, backlog: int) -> None:
        """The link is back after an outage: the window starts small, the rate at the share
        (or slow-starts when the share is not known), like every other lane coming back."""
        self.window.reset_to_minimum()
        self.started(now, published, backlog)

    def share(self, published: float | None) -> float | None:
        """This lane's share of the account's quota, entries/s: the published fair rate, else
        the configured one (`configured_share`); None: neither."""
        if published is not None and published > 0:
            return published
        return configured_share(self._settings)

    def share_changed(self, now: float, published: float | None, backlog: int) -> None:
        """The fair rate re-read while draining (the cloud republishes it as lanes finish
        their backlogs, so the ones still draining get the share the others left). A lane
        started at its share moves to the new one (up at once, or down); None or 0 (nothing
        read) changes nothing, nor does it for a lane that knew no share when it started.

        A lane with no more than one request left keeps its rate when the share rises: the
        lanes that finished first were ahead by their random start, not short of work, so in
        a fleet of equal backlogs the quota is still full, and the raise would only bring
        every last request forward into the same seconds (bench/fleet.py --simulated, 10,000
        lanes of 20 records: 1.11x the ideal and 2.2% throttled with the raise, 1.00x and
        none without; varied backlogs unchanged within the seeds' spread)."""
        if published is None or published <= 0 or not self._settings.rate_limit:
            return
        current = self.limiter.share
        if current is not None and published > current and backlog <= self._per_request:
            return  # a raise would only bring its last request into the others' seconds
        level = RESHARE_LEVEL_FRACTION * self._level(published, backlog)
        self.limiter.reshare(now, published, level)

    def _start_at_share(self, now: float, share: float, backlog: int) -> None:
        if not self._settings.rate_limit:
            return
        first_request = max(1, min(backlog, self._settings.max_entries_per_request))
        head_start = self._uniform() * first_request
        self.limiter.start_at(now, share, head_start, self._level(share, backlog))

    def _level(self, share: float, backlog: int) -> float:
        """How long a lane at `share` holds it before probing: a random few recovery times,
        or until its backlog is drained at the share if sooner."""
        recovery = self._settings.rate_recovery_seconds
        return min(backlog / share, SHARE_LEVEL_RECOVERIES * recovery * (0.5 + self._uniform()))

    # --- before sending -------------------------------------------------------------------

    def allowed_in_flight(self, probing: bool) -> int:
        """Requests allowed in flight: one while the link is probed, else the window."""
        return 1 if probing else self.window.limit

    def lease_limit(self, probing: bool, per_request: int, now: float) -> int:
        """Records to lease now: a whole window's worth (fewer journal transactions), but no
        more than the rate limiter lets go within half a lease."""
        wanted = self.allowed_in_flight(probing) * per_request
        within = self._settings.lease_seconds * HELD_BATCH_MAX_LEASE_FRACTION
        affordable = self.limiter.lease_limit(wanted, within, now)
        # Whole requests: a part-request lease sized by the tokens the lane happened to hold
        # made the next request's wait undo the random start, and a whole fleet sent its
        # second requests in the same second (bench/fleet_sim.py).
        return max(per_request, affordable - affordable % per_request)

    def grant(self, wanted: int, now: float) -> Grant:
        """How many of `wanted` entries may go now; if none, how long to wait."""
        return self.limiter.grant(wanted, now)

    def sent(self, entries: int, now: float) -> int:
        """`entries` are being sent now; returns the request's window ticket."""
        self.limiter.on_send(entries, now)
        return self.window.ticket()

    # --- after the answer -----------------------------------------------------------------

    def answered(self, ticket: int, sent: int, accepted: int, throttled: bool, now: float) -> None:
        """An answer: `accepted` of `sent` entries taken; `throttled` if any was throttled."""
        self.limiter.on_answer(sent, accepted, throttled, now)
        if throttled:
            self.window.on_congestion(ticket)
        else:
            self.window.on_success()

    def request_throttled(self, ticket: int, sent: int, now: float) -> None:
        """The whole request was throttled."""
        self.answered(ticket, sent, 0, True, now)

    def unanswered(self) -> None:
        """No answer (transport failure, read timeout): says nothing about the quota."""
        self.limiter.on_unanswered()

    def congested(self, ticket: int) -> None:
        """Answered too late (a read timeout): fewer requests in flight."""
        self.window.on_congestion(ticket)

    def retry_delay(self, attempt: int, throttled: bool) -> float:
        """Seconds until a refused record's retry number `attempt` is due."""
        return self._retry.entry_delay(
            attempt, throttled=throttled, rate_limited=self.limiter.enabled
        )
