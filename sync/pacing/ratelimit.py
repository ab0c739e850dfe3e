"""Client-side send-rate limiter: the AWS SDKs' "adaptive" retry mode, counted in entries.

EventBridge's PutEvents quota is account-wide and counted in entries; when a regional outage
ends, a whole fleet reconnects at once and each terminal would offer its whole backlog in the
first second. This limiter follows botocore's adaptive mode (`botocore/retries/adaptive.py`,
`bucket.py`, `throttling.py`): a token bucket gates sending, and its fill rate follows a CUBIC
curve, cut by `decrease_factor` from the measured send rate on throttling, then grown back
smoothly (slowly near the rate that was throttled, faster further from it).

Differences from botocore, and why:

- Tokens are entries, not requests: the quota is per entry, and a 10-entry request costs ten
  times a 1-entry one. The bucket holds at least one full request's worth, so a request is
  never starved by its size.
- It never blocks: `delay` says how long until a request of `n` entries may go, and the
  engine's single driver thread keeps working (collecting answers) meanwhile.
- Throttling is the share of throttled entries in an answer, so a partly throttled request
  counts as throttling (botocore sees one error per request).
- After a throttle a terminal's own answers keep it honest: a clean answer may raise the rate,
  but never above `MAX_RATE_ADJUST_SCALE` x the rate actually measured (botocore's rule), so a
  terminal that sent little cannot claim a high rate.

Before the first throttle the limiter only slow-starts (`SlowStart`: one request in flight,
doubling with every answer, gone after ~3 round trips), then stays out of the way like
botocore's: a lone terminal draining to an unthrottled endpoint is not slowed (bench/drain.py
figures unchanged within noise), and an idle engine never waits on it. A lane that knows its
share of a fleet's quota skips all that (`start_at`, from `sync/pacing/lane.py`): it starts
limited at its share, is not cut below it by a lone throttle (others probing above theirs),
steps below it one cut at a time when throttled again at it (the quota is less than the share
assumed) and is not lifted back by a re-read of the fair rate, and grows above it by the same
entries/s as every other lane.
Times are whatever clock the caller passes (`now`), so tests inject one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

# botocore's constants (retries/throttling.py, adaptive.py, bucket.py), except the recovery
# time, which botocore derives from the rate (see `CubicRate`): 10 s is what botocore's curve
# gives at about 1,300 entries/s.
DEFAULT_RECOVERY_SECONDS = 10.0
BOTOCORE_SCALE_CONSTANT = 0.4  # growth beyond the plateau, entries/s per s**3
# Slow start (before the first answer, and after an outage): one full request in flight,
# doubling with every entry accepted (TCP's slow start), until a full window is allowed.
# One entry at first was tried: a thousand terminals then need a thousand requests to move a
# thousand entries, and the fleet's first seconds go to request overhead (bench/fleet.py).
DEFAULT_DECREASE_FACTOR = 0.7
DEFAULT_MIN_RATE = 0.5
MAX_RATE_ADJUST_SCALE = 2.0
# A lane started at its share of a fleet's quota probes above it by this many times the share's
# own CUBIC growth, the same entries/s for every lane (tuned on bench/fleet_sim.py at 10,000
# lanes: 1 left the quota unused as small backlogs finished, 10 and more throttled 3-4%).
SHARE_GROWTH = 3.0
# With `probe_once` (`[sync] probe_once`), a lane throttled while probing above its share found
# the ceiling: it backs off below its share (the decrease factor), is back at it within a
# recovery time, holds it a random 0.5 to 1.5 times this many recovery times more, and probes
# again only once the published share rises (lanes finished: spare quota). bench/fleet_sim.py,
# 10,000 lanes of 100 records: 31% throttled without it, 15.6% with; varied backlogs drain in
# 1.29x the ideal instead of 1.17x (docs/performance.md, "The probing").
PROBE_BACKOFF_RECOVERIES = 2.0
# A lane at its share gets this part of its throttled entries' tokens back: the quota took
# none of them, and its share went to lanes probing above theirs (bench/fleet_sim.py: without
# it a lane throttled near the end waited out a whole request at its share again, 1.27x the
# ideal for 1,000 lanes of 20 records, 1.06x with it; all of them back resent them into the
# same overload: 9-20% throttled).
SHARE_REFUND = 0.5
# A lane throttled at its share again within this many recovery times after a throttle at its
# share is cut below it: once may be the lanes probing above theirs, twice the quota is not
# what the share assumed (cut, or taken by the chain's other producers) and the floor would
# hold the whole fleet over it until the cloud republishes (`SHARE_FLOOR_STRIKES`).
SHARE_FLOOR_STRIKE_RECOVERIES = 1.0
RATE_SMOOTHING = 0.8
RATE_BUCKET_SECONDS = 0.5
# A lane that knows its share can be cut to this part of it (`_lowest`), whatever `min_rate`.
SHARE_LOWEST_FRACTION = 0.1
# A lane within this fraction above its share is at its share (`_strike`).
SHARE_SLACK = 0.01
# Floating-point slack: a bucket this close to enough tokens is enough (else a wake-up at the
# computed instant could find 1e-14 tokens missing and wait again for nothing).
TOKEN_EPSILON = 1e-9


class RateMeter:
    """Smoothed rate of entries (sent, or accepted), updated once per `RATE_BUCKET_SECONDS`
    time bucket (botocore's `RateClocker`). Until the first bucket closes it reports the rate
    since it started (botocore reports 0, which cut a terminal throttled in its first half
    second straight to the floor, however fast it was sending)."""

    def __init__(self, now: float) -> None:
        self._rate = 0.0
        self._count = 0.0
        self._start = now
        self._measured = False
        self._last_bucket = self._bucket(now)

    @staticmethod
    def _bucket(now: float) -> float:
        return math.floor(now / RATE_BUCKET_SECONDS) * RATE_BUCKET_SECONDS

    @property
    def rate(self) -> float:
        return self._rate

    def record(self, amount: int, now: float) -> float:
        bucket = self._bucket(now)
        self._count += amount
        if bucket > self._last_bucket:
            current = self._count / (bucket - self._last_bucket)
            self._rate = current * RATE_SMOOTHING + self._rate * (1 - RATE_SMOOTHING)
            self._count = 0.0
            self._last_bucket = bucket
            self._measured = True
        elif not self._measured:
            self._rate = self._count / max(RATE_BUCKET_SECONDS, now - self._start)
        return self._rate


class CubicRate:
    """The CUBIC congestion curve (botocore's `CubicCalculator`), scaled to the throttled rate:
    after a throttle at rate `w_max` the rate restarts at `w_max * beta` and follows
    `w_max * (1 + scale * (t - k) ** 3)`, flat around `w_max` at `t = k` (the recovery time)
    and steep beyond.

    botocore's curve is `0.4 * (t - k) ** 3 + w_max` in requests/s, so its recovery time grows
    with the rate (k = 13 s at 3,000/s, under 1 s at 0.5/s). A terminal's share of a fleet's
    quota is a fraction of an entry per second, where that curve doubles the rate every few
    seconds and a thousand terminals overshoot the quota together; a fixed recovery time keeps
    the plateau as long at every rate."""

    def __init__(
        self,
        now: float,
        recovery_seconds: float,
        beta: float,
        growth_scale: float = BOTOCORE_SCALE_CONSTANT,
    ) -> None:
        self._beta = beta
        self._k = recovery_seconds
        self.recovery_seconds = recovery_seconds
        self._scale = (1 - beta) / recovery_seconds**3
        self._growth_scale = growth_scale
        self._w_max = 0.0
        self._last_throttle = now
        self._level_until = -math.inf
        self._share_growth = False
        self._probe_from = -math.inf

    def on_success(self, now: float) -> float:
        if now < self._level_until:
            return self._w_max
        offset = now - self._last_throttle - self._k
        scale = self._w_max * self._scale
        if offset > 0 and self._share_growth:
            if now < self._probe_from:
                return self._w_max
            offset = now - max(self._probe_from, self._last_throttle + self._k)
            # Past the plateau (and the level after a refused probe), a lane started at its
            # share grows by the same entries/s as every other lane, whatever its rate: cut in
            # proportion and grown alike, the lanes converge on equal rates (AIMD's fairness);
            # grown in proportion, the lanes that had more took ever more (bench/fleet_sim.py:
            # mid-sized backlogs took twice their fair time).
            return self._w_max + self._growth_scale * offset**3
        if offset > 0:
            # Past the plateau with no throttle: at least botocore's growth, so a terminal
            # cut deep (to the floor) is back to full speed in seconds, not minutes.
            scale = max(scale, self._growth_scale)
        return self._w_max + scale * offset**3

    def start_at(self, rate: float, now: float, level_seconds: float) -> None:
        """Level at `rate` from `now` (as at the end of a plateau), growing beyond it relative
        to `rate` only: a lane started at its share of a fleet's quota probes upward by a
        fraction of that share, so the fleet together grows by that fraction (botocore's
        absolute growth would have every lane add the same entries/s, thousands of times)."""
        self._w_max = rate
        self._level_until = now + level_seconds
        self._last_throttle = self._level_until - self._k
        self._growth_scale = rate * self._scale * SHARE_GROWTH
        self._share_growth = True
        self._probe_from = -math.inf

    def backed_off(self, rate: float, now: float, level_seconds: float) -> float:
        """A probe above `rate` (the share) was throttled: back below it by the decrease
        factor, up along the curve to it within the recovery time, then level there for
        `level_seconds` at least."""
        self._probe_from = now + self._k + level_seconds
        return self.on_throttle(rate, now)

    def on_throttle(self, rate: float, now: float) -> float:
        self._level_until = -math.inf
        self._w_max = rate
        self._last_throttle = now
        return rate * self._beta


class SlowStart:
    """Entries allowed in flight before the first throttle or full speed: `initial` at first,
    plus one for every entry accepted (so doubling every round trip), until `full` are
    allowed and the limiter steps aside.

    A fleet that reconnects at once offers one request per terminal, not whole backlogs, and
    is throttled before it has sent much; a lone terminal reaches its full window within a
    few round trips (3 for 8 requests of 10)."""

    def __init__(self, initial: int, full: int) -> None:
        self._full = full
        self._allowed = initial
        self._outstanding = 0

    @property
    def done(self) -> bool:
        return self._allowed >= self._full

    def grant(self, wanted: int) -> int:
        return max(0, min(wanted, self._allowed - self._outstanding))

    def sent(self, amount: int) -> None:
        self._outstanding += amount

    def settled(self, sent: int, accepted: int) -> None:
        """Entries sent came back (`accepted` of them taken), or never will (0 accepted)."""
        self._outstanding = max(0, self._outstanding - sent)
        self._allowed += accepted


@dataclass(frozen=True)
class Grant:
    """How many entries of a batch may be sent now; if none, how long to wait (infinite:
    until an answer comes back)."""

    entries: int
    wait_seconds: float


@dataclass(frozen=True)
class LimiterSnapshot:
    enabled: bool
    fill_rate: float | None  # entries/s; None while the limiter is not engaged
    tokens: float
    measured_rate: float


class AdaptiveRateLimiter:
    """A token bucket of entries whose fill rate adapts to throttling. Not thread-safe: the
    engine's driver thread owns it."""

    def __init__(
        self,
        now: float,
        *,
        min_rate: float = DEFAULT_MIN_RATE,
        recovery_seconds: float = DEFAULT_RECOVERY_SECONDS,
        decrease_factor: float = DEFAULT_DECREASE_FACTOR,
        min_capacity: float = 1.0,
        active: bool = True,
        uniform: Callable[[], float] = random.random,
        full_window: int = 0,
        probe_once: bool = False,
    ) -> None:
        if min_rate <= 0 or recovery_seconds <= 0 or not 0 < decrease_factor < 1:
            raise ValueError("min_rate, recovery_seconds must be > 0, decrease_factor in (0, 1)")
        self._active = active
        self._probe_once = probe_once
        self._uniform = uniform
        self._min_rate = min_rate
        self._min_capacity = max(1.0, min_capacity)
        self._cubic = CubicRate(now, recovery_seconds, decrease_factor)
        self._fill_rate = min_rate
        self._capacity = self._min_capacity
        self._tokens = 0.0
        self._stamp = now
        self._full_window = full_window
        self._enabled = False
        self._slow_start: SlowStart | None = None
        self._share: float | None = None
        # Cut below the share by a second throttle at it (None: the share is the floor), and
        # when the last throttle at the share came.
        self._below_share = False
        self._share_throttled_at = -math.inf
        # False once a probe above the share was refused, until the share rises.
        self._may_probe = True
        self._meter = RateMeter(now)
        self._accepted = RateMeter(now)
        self.restart(now)

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def share(self) -> float | None:
        """The lane's share of a fleet's quota it was started at or last given (entries/s);
        None: it knows none."""
        return self._share

    @property
    def starting(self) -> bool:
        return self._slow_start is not None

    def restart(self, now: float) -> None:
        """Slow start again (at construction, and when the link is back after an outage: the
        rest of the fleet is probably reconnecting too). `full_window` 0: no slow start."""
        self._enabled = False
        self._slow_start = (
            SlowStart(int(self._min_capacity), self._full_window) if self._active else None
        )
        if self._slow_start is not None and self._slow_start.done:
            self._slow_start = None
        self._meter = RateMeter(now)
        self._accepted = RateMeter(now)

    def start_at(
        self, now: float, rate: float, head_start: float = 0.0, level_seconds: float = 0.0
    ) -> None:
        """Limit from now at `rate` (a lane's share of the fleet's quota) and probe upward
        from it along the CUBIC curve, with no slow start; the bucket holds `head_start`
        tokens (a random part of the first request, so that a fleet starting together
        spreads its first requests over the time its share takes to earn one)."""
        self._slow_start = None
        self._share = rate
        self._may_probe = True
        self._below_share = False
        self._share_throttled_at = -math.inf
        self._meter = RateMeter(now)
        self._accepted = RateMeter(now)
        self._cubic.start_at(rate, now, level_seconds)
        self._enabled = True
        self._stamp = now
        self._set_rate(rate, now)
        self._tokens = min(max(0.0, head_start), self._capacity)

    def reshare(self, now: float, rate: float, level_seconds: float) -> None:
        """The lane's share became `rate` (a republished fair rate): it is the new floor; a
        lane below it rises to it, one above a lower share comes down to it, each then level
        for `level_seconds` and probing from there. A lane the quota cut below its share
        stays below (it only comes down to a lower share): it grows back along the CUBIC curve,
        the floor again once it reaches the share. Only for a lane started at a share."""
        if self._share is None or rate == self._share:
            return
        lower = rate < self._share
        self._may_probe = self._may_probe or not lower
        self._share = rate
        if self._below_share:
            if self._fill_rate > rate:
                self._set_rate(rate, now)
            return
        if lower or self._fill_rate < rate:
            self._cubic.start_at(rate, now, level_seconds)
            self._set_rate(rate, now)

    def grant(self, wanted: int, now: float) -> Grant:
        """How many of `wanted` entries may be sent now (all, some during slow start, or none
        and how long to wait)."""
        if self._slow_start is not None:
            entries = self._slow_start.grant(wanted)
            return Grant(entries, 0.0 if entries else math.inf)
        wait = self.delay(wanted, now)
        return Grant(0 if wait > 0 else wanted, wait)

    def delay(self, amount: int, now: float) -> float:
        """Seconds until `amount` entries may be sent (0: now). Takes nothing."""
        if not self._enabled:
            return 0.0
        self._grow(now)
        self._refill(now)
        missing = min(float(amount), self._capacity) - self._tokens
        return missing / self._fill_rate if missing > TOKEN_EPSILON else 0.0

    def lease_limit(self, wanted: int, seconds: float, now: float) -> int:
        """At most `wanted`, and no more entries than may be sent within `seconds` (but at
        least one bucketful): the engine leases no more, so records do not sit out their
        lease waiting here."""
        if not self._enabled:
            return wanted
        self._refill(now)
        affordable = max(self._capacity, self._tokens + self._fill_rate * seconds)
        return min(wanted, math.floor(affordable))

    def on_send(self, amount: int, now: float) -> None:
        """`amount` entries are being sent now (as granted)."""
        if self._slow_start is not None:
            self._slow_start.sent(amount)
        self._meter.record(amount, now)
        if self._enabled:
            self._refill(now)
            # A request larger than the bucket (possible only just after a cut) empties it.
            self._tokens = max(0.0, self._tokens - amount)

    def on_unanswered(self) -> None:
        """A request failed without an answer. That says nothing about the quota: slow start
        ends (the link monitor paces an unreachable endpoint, and detects an outage from
        requests in parallel as before; coming back online restarts the slow start)."""
        self._slow_start = None

    def on_answer(self, sent: int, accepted: int, throttled: bool, now: float) -> None:
        """An answer to `sent` entries came back with `accepted` taken; `throttled` when any
        entry (or the whole request) was refused for the quota. An inactive limiter
        (`active=False`: switched off in the settings) never engages."""
        if not self._active:
            return
        measured = self._meter.record(0, now)
        goodput = self._accepted.record(accepted, now)
        if self._slow_start is not None:
            self._slow_start.settled(sent, accepted)
            if throttled or self._slow_start.done:
                self._slow_start = None
        if throttled and self._probe_once and self._probing():
            self._probe_refused(now)
            return
        if throttled:
            # Cut from what the service actually took, not from what was offered: in a fleet
            # over the quota a terminal's accepted rate is about its share of the quota, so one
            # cut lands near it (botocore cuts from the send rate, many cuts for a big fleet).
            rate = min(measured, goodput)
            if self._enabled:
                rate = min(rate, self._fill_rate)
            # Nothing accepted yet: grow back from the floor, not from zero (never).
            rate = max(rate, self._lowest())
            if self._share is not None:
                # A lane that knows its share steps down from it (or from below it) one cut
                # at a time: from what it took it fell to a tenth of its share at once, and a
                # fleet over a cut quota drained its tail at that (bench/fleet_sim.py).
                rate = max(rate, min(self._fill_rate, self._share))
            self._strike(now)
            new_rate = self._cubic.on_throttle(rate, now)
            self._engage(now)
            if self._share is not None:
                refund = (sent - accepted) * SHARE_REFUND
                self._tokens = min(self._capacity, self._tokens + refund)
        elif self._enabled:
            new_rate = min(self._cubic.on_success(now), self._probe_ceiling())
        else:
            return
        new_rate = min(new_rate, MAX_RATE_ADJUST_SCALE * measured)
        if self._share is not None and not self._below_share:
            # Not below the share at the first throttle: a lane at its share is not what
            # overloads the quota (the fleet at its shares fits it), and cut below it, it fell
            # behind the lanes probing above theirs (bench/fleet_sim.py). At the second, the
            # quota is not what the share assumed (`_strike`).
            new_rate = max(new_rate, self._share)
        self._set_rate(new_rate, now)

    def _probing(self) -> bool:
        """Above its share (and not cut below it): the lane is probing for spare quota."""
        return (
            self._share is not None
            and not self._below_share
            and self._fill_rate > self._share * (1 + SHARE_SLACK)
        )

    def _probe_ceiling(self) -> float:
        """How high the curve may take the lane: its share once a probe above it was refused
        (until the share rises), else no limit."""
        if self._share is None or self._may_probe:
            return math.inf
        return self._share

    def _probe_refused(self, now: float) -> None:
        """A throttle while probing: the probe found the ceiling. Below the share and back to
        it (not CUBIC's cut to 0.7 of the throttled rate, back up to that rate within a
        recovery time and beyond, which had the fleet probing the same ceiling together), and
        no probing until the share rises (`PROBE_BACKOFF_RECOVERIES`)."""
        assert self._share is not None
        recovery = self._cubic.recovery_seconds
        level = PROBE_BACKOFF_RECOVERIES * recovery * (0.5 + self._uniform())
        rate = self._cubic.backed_off(self._share, now, level)
        self._engage(now)
        self._set_rate(rate, now)
        self._below_share = True  # back to it along the curve, not lifted at the next answer
        self._may_probe = False

    def _lowest(self) -> float:
        """The least fill rate: `min_rate`, or for a lane that knows its share a part of it if
        that is less (0.5 entries/s is a 10,000-lane fleet's share of 5,000/s: as the floor, a
        quota cut below it held the whole fleet over the quota, 61% throttled)."""
        if self._share is None:
            return self._min_rate
        return min(self._min_rate, self._share * SHARE_LOWEST_FRACTION)

    def _strike(self, now: float) -> None:
        """A throttle: a second one at the share within `SHARE_FLOOR_STRIKE_RECOVERIES`
        recovery times of the first lifts the floor (until the lane is back at its share)."""
        if self._share is None or self._fill_rate > self._share * (1 + SHARE_SLACK):
            return
        window = SHARE_FLOOR_STRIKE_RECOVERIES * self._cubic.recovery_seconds
        if now - self._share_throttled_at <= window:
            self._below_share = True
        self._share_throttled_at = now

    def snapshot(self) -> LimiterSnapshot:
        return LimiterSnapshot(
            self._enabled,
            self._fill_rate if self._enabled else None,
            self._tokens,
            self._meter.rate,
        )

    def _engage(self, now: float) -> None:
        """Start limiting, or go on after another throttle. The bucket restarts with a random
        part of one request's worth: a fleet throttled by the same wave would otherwise wait
        out the same refill and send again all at once, every ~10 s (bench/fleet.py showed
        the stalls), so each throttle gets full jitter, as retries do. Only ever fewer tokens
        than it had: a throttle handing out fresh tokens let a lane answered quickly send
        again at once after each throttle, a throttled loop the bucket never stopped
        (bench/fleet_sim.py at 10,000 lanes)."""
        jittered = self._uniform() * self._min_capacity
        if self._enabled:
            self._refill(now)
            jittered = min(jittered, self._tokens)
        self._enabled = True
        self._stamp = now
        self._tokens = jittered

    def _grow(self, now: float) -> None:
        """Follow the curve between answers too (botocore moves only on answers): a terminal
        at a fraction of an entry per second hears back once every ten or twenty seconds,
        and growing only then left a reconnecting fleet a long tail under the quota. Only
        upward. Called with a batch waiting for tokens: the terminal uses all the rate it
        has, so botocore's cap (twice the rate sent, against claiming a rate an idle client
        never uses) is not applied here."""
        rate = min(self._cubic.on_success(now), self._probe_ceiling())
        if rate > self._fill_rate:
            self._set_rate(rate, now)

    def _set_rate(self, rate: float, now: float) -> None:
        # Fill at the old rate up to now first, so the new rate applies from now only.
        self._refill(now)
        self._fill_rate = max(rate, self._lowest())
        if self._share is not None and self._fill_rate >= self._share:
            self._below_share = False  # back at its share: the floor again
        self._capacity = max(self._fill_rate, self._min_capacity)
        self._tokens = min(self._tokens, self._capacity)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)  # a clock stepping back adds nothing
        self._tokens = min(self._capacity, self._tokens + elapsed * self._fill_rate)
        self._stamp = now
