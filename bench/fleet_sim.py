"""The fleet reconnect storm on a simulated clock: every lane drives the real pacing.

Each simulated lane holds a `sync.pacing.lane.LanePacer`, the object `sync/engine.py` asks
before and after each request, and goes through the engine's round as the engine does: collect
the answers (accepted entries delivered, throttled ones due again after the retry policy's
delay), then fill the window (hand back held batches older than half a lease, lease due
records in seq order up to the pacer's lease limit, ask the rate limiter for each batch, send
while the window has room, prefetch when it is full). Nothing sleeps: an event queue jumps to
the next answer, the next moment the engine asks its rate limiter again (by halves of the
wait: `sync.pacing.lane.rate_wait`), or the next idle poll at which a backed-off record is
due (the engine polls every `idle_poll_seconds`). Records are (seq, attempts) pairs;
journals, HTTP and event building are not simulated. With a
`Republisher` the consumer republishes the fair rate as lanes finish, counting them by its own
rule, and draining lanes re-read it on their period through the pacer's `share_changed`, as
the engine does.

Assumptions, stated because they are not measured here:

- The quota: a token bucket counted in entries, refilled at the quota and holding one second's
  worth, full at the start; an entry that finds no token is throttled
  (`ThrottlingException` inside an HTTP 200), as the real bench's endpoint does. AWS documents
  the PutEvents quota as a steady rate per account and region and not its burst; one second's
  worth is the usual token-bucket burst of AWS API throttling and what `bench/fleet.py` does.
- The endpoint: an answer comes `rtt` after the request plus its wait at one FIFO server
  taking `service_seconds` per request. The defaults are calibrated to `bench/fleet.py` on the
  project's 2-core VM (its local endpoint and a thousand engines share the CPU: about 340
  requests/s at most), so that the two can be compared (`bench/fleet.py --validate`).
- The host: lanes act the moment they are due, unless the scenario has stalls (`--validate`
  replays the real run's, as each of its worker processes measured them: a process starved of
  CPU, its lanes late together and then sending together); the endpoint and its quota never
  stall.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloud.fair_rate import DEFAULT_WINDOW_SECONDS, FairRateSettings, fleet_rate
from posd.journal.settings import JournalSettings
from sync.eventbridge.retry import RetryPolicy
from sync.pacing.backoff import FullJitterBackoff
from sync.pacing.lane import HELD_BATCH_MAX_LEASE_FRACTION, LanePacer, rate_wait
from sync.settings import PUT_EVENTS_MAX_ENTRIES, SyncSettings
from wire.fair_rate import MIN_FAIR_RATE, LaneHeard, sharing_lanes

# Calibrated to bench/fleet.py's local endpoint on the project's VM (see the docstring).
DEFAULT_RTT_SECONDS = 0.004
DEFAULT_ENDPOINT_CAPACITY = 345.0  # requests/s
DEFAULT_SERVICE_SECONDS = 1.0 / DEFAULT_ENDPOINT_CAPACITY
BURST_SECONDS = 1.0  # the quota's bucket holds this many seconds' worth
SAMPLE_SECONDS = 0.5  # as bench/fleet.py's endpoint
SIMULATION_LIMIT_SECONDS = 86_400.0
# What the simulated consumer hears (`Republisher`): a checkpoint every this many records, as
# the journal cuts them by default; lanes last heard this long before the storm, live.
CHECKPOINT_RECORDS = JournalSettings().checkpoint_every_records
BEFORE_THE_OUTAGE = -3600.0

Record = tuple[int, int]  # (seq, attempts)


@dataclass(frozen=True)
class StalledLanes:
    """Lanes `first` to `first + count - 1` (one worker process of a real run) act on nothing
    during each (start, end) of `spans`: what is due then happens at the span's end."""

    first: int
    count: int
    spans: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Scenario:
    """What the fleet brings: each lane's backlog and when it joins (seconds after the
    start), and changes of the account's quota as (at, entries/s)."""

    backlogs: Sequence[int]
    joins: Sequence[float]
    quota: float
    quota_changes: Sequence[tuple[float, float]] = ()
    # When groups of lanes run none of their work (starved of CPU: the real run's worker
    # processes, replayed by `bench/fleet.py --validate`); the endpoint and its quota go on.
    stalls: Sequence[StalledLanes] = ()

    def resumed(self, moment: float, lane: int) -> float:
        """When lane `lane` acting at `moment` really acts: the end of a stall it falls in."""
        for stalled in self.stalls:
            if stalled.first <= lane < stalled.first + stalled.count:
                for start, end in stalled.spans:
                    if start <= moment < end:
                        return end
        return moment

    def quota_at(self, moment: float) -> float:
        rate = self.quota
        for at, changed in self.quota_changes:
            if at <= moment:
                rate = changed
        return rate


@dataclass
class Endpoint:
    """The account's quota (a token bucket) behind one FIFO server."""

    scenario: Scenario
    rtt: float
    service_seconds: float
    tokens: float = 0.0
    stamp: float = 0.0
    free_at: float = 0.0
    requests: int = 0
    throttled_requests: int = 0
    accepted_at: dict[float, int] = field(default_factory=dict)
    throttled_at: dict[float, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = self.scenario.quota * BURST_SECONDS

    def answer(self, now: float, entries: int) -> tuple[float, int]:
        """When the answer to a request of `entries` sent at `now` comes back, and how many
        of its entries were accepted (the first ones: the bucket is drawn entry by entry)."""
        start = max(now + self.rtt / 2, self.free_at)
        self.free_at = start + self.service_seconds
        self._refill(start)
        accepted = min(entries, math.floor(self.tokens + 1e-9))
        self.tokens -= accepted
        moment = round(start / SAMPLE_SECONDS) * SAMPLE_SECONDS
        self.accepted_at[moment] = self.accepted_at.get(moment, 0) + accepted
        self.throttled_at[moment] = self.throttled_at.get(moment, 0) + entries - accepted
        self.requests += 1
        self.throttled_requests += accepted < entries
        return self.free_at + self.rtt / 2, accepted

    def _refill(self, moment: float) -> None:
        # Requests are decided in time order (FIFO), so the bucket only moves forward; a
        # quota change applies from its moment on.
        for at, _ in self.scenario.quota_changes:
            if self.stamp < at <= moment:
                self._fill_until(at, self.scenario.quota_at(self.stamp))
        self._fill_until(moment, self.scenario.quota_at(moment))

    def _fill_until(self, moment: float, rate: float) -> None:
        elapsed = max(0.0, moment - self.stamp)
        self.tokens = min(rate * BURST_SECONDS, self.tokens + elapsed * rate)
        self.stamp = max(self.stamp, moment)


@dataclass
class _Flight:
    records: list[Record]
    ticket: int


class SimLane:
    """One lane's journal (due records in seq order), held batches and requests in flight,
    going through the engine's round with a real `LanePacer`."""

    def __init__(
        self,
        backlog: int,
        settings: SyncSettings,
        now: float,
        share: float | None,
        rng: random.Random,
    ) -> None:
        self.settings = settings
        retry = RetryPolicy(
            FullJitterBackoff(settings.backoff_base_seconds, settings.backoff_cap_seconds)
        )
        self.pacer = LanePacer(settings, now, retry, uniform=rng.random)
        self.pending = backlog
        self._fresh_next, self._fresh_end = 0, backlog  # never sent: seqs in order, due now
        self._ready: list[Record] = []  # retried and due: a heap by seq
        self._due: list[tuple[float, int, int]] = []  # retried, not yet due: (due, seq, tries)
        self._held: deque[tuple[list[Record], float]] = deque()
        self.in_flight: dict[int, _Flight] = {}
        self.answers: list[tuple[int, int]] = []  # (ticket, accepted) come back, not collected
        self.rate_delay = 0.0
        self._lease_was_empty = False
        self.finished: float | None = None
        self.pacer.started(now, share, backlog)

    # --- the engine's round ---------------------------------------------------------------

    def round(self, now: float) -> list[tuple[int, int]]:
        """One round at `now`; returns the requests sent, as (entries, ticket)."""
        answers, self.answers = self.answers, []
        for ticket, accepted in answers:
            self._collect(self.in_flight.pop(ticket), accepted, now)
        sent: list[tuple[int, int]] = []
        self._fill(now, sent)
        if not self.in_flight and not self._held and self._lease_was_empty and not self.pending:
            self.finished = now
        return sent

    def next_wake(self, now: float) -> float | None:
        """When the engine's loop would next find something to do without an answer: the
        rate limiter's wait, or the idle poll at which a backed-off or held record is due."""
        poll = self.settings.idle_poll_seconds
        moments: list[float] = []
        if self.rate_delay > 0:
            # The engine asks the limiter again by halves (its rate grows meanwhile).
            moments.append(now + rate_wait(self.rate_delay, poll))
        if self._due:
            moments.append(now + poll * max(1, math.ceil((self._due[0][0] - now) / poll)))
        if self._held:
            stale = self._held[0][1] + self.settings.lease_seconds * HELD_BATCH_MAX_LEASE_FRACTION
            moments.append(now + poll * max(1, math.ceil((stale - now) / poll)))
        return min(moments) if moments else None

    def _collect(self, flight: _Flight, accepted: int, now: float) -> None:
        sent = len(flight.records)
        throttled = accepted < sent
        self.pacer.answered(flight.ticket, sent, accepted, throttled, now)
        self.pending -= accepted
        refused = flight.records[accepted:]
        if refused:
            attempt = max(tries for _, tries in refused) + 1
            due = now + self.pacer.retry_delay(attempt, True)
            for seq, tries in refused:
                self._schedule(seq, tries + 1, due, now)

    def _schedule(self, seq: int, tries: int, due: float, now: float) -> None:
        if due <= now:
            heapq.heappush(self._ready, (seq, tries))
        else:
            heapq.heappush(self._due, (due, seq, tries))

    def _fill(self, now: float, sent: list[tuple[int, int]]) -> None:
        self.rate_delay = 0.0
        while len(self.in_flight) < self.pacer.allowed_in_flight(False):
            held = self._next_batch(now)
            if held is None:
                return
            grant = self.pacer.grant(len(held[0]), now)
            self.rate_delay = grant.wait_seconds
            if not grant.entries:
                return
            self._held.popleft()
            batch = held[0][: grant.entries]
            if len(batch) < len(held[0]):
                self._held.appendleft((held[0][grant.entries :], held[1]))
            ticket = self.pacer.sent(len(batch), now)
            self.in_flight[ticket] = _Flight(batch, ticket)
            sent.append((len(batch), ticket))
        if len(self._held) < self.pacer.allowed_in_flight(False):
            self._lease(now)

    def _next_batch(self, now: float) -> tuple[list[Record], float] | None:
        max_age = self.settings.lease_seconds * HELD_BATCH_MAX_LEASE_FRACTION
        while self._held and now - self._held[0][1] > max_age:
            stale, _ = self._held.popleft()
            for seq, tries in stale:  # the journal counts a hand-back as an attempt
                self._schedule(seq, tries + 1, now, now)
        if not self._held:
            self._lease(now)
        return self._held[0] if self._held else None

    def _lease(self, now: float) -> None:
        per_request = self.settings.max_entries_per_request
        limit = self.pacer.lease_limit(False, per_request, now)
        while self._due and self._due[0][0] <= now:
            _, seq, tries = heapq.heappop(self._due)
            heapq.heappush(self._ready, (seq, tries))
        records: list[Record] = []
        while self._ready and len(records) < limit:
            records.append(heapq.heappop(self._ready))
        take = min(limit - len(records), self._fresh_end - self._fresh_next)
        records.extend((seq, 0) for seq in range(self._fresh_next, self._fresh_next + take))
        self._fresh_next += take
        self._lease_was_empty = not records
        for first in range(0, len(records), per_request):
            self._held.append((records[first : first + per_request], now))


JOIN, WAKE, ANSWER, PUBLISH, REREAD = 0, 1, 2, 3, 4


@dataclass
class Republisher:
    """The consumer publishing the fair rate (`cloud/fair_rate.py`), with its own counting rule
    (`wire.fair_rate.sharing_lanes`) and rate (`cloud.fair_rate.fleet_rate`): every `period`
    seconds (its SQS batches' republishing, `cloud.fair_rate.REPUBLISH_SECONDS`) and at once
    when the quota changes (a new `PutEventsQuota`), the quota's `share` over the lanes that
    share it, never below `floor`; each lane re-reads it every `reread` seconds while
    draining, at a random phase.

    What the consumer hears of a lane, as its watermark items tell it: a lane not yet back was
    last heard before the outage, live (it counts); a lane draining is heard, behind (its
    checkpoints were made before it came back), each time a checkpoint's worth of its records
    (`CHECKPOINT_RECORDS`) is delivered, and when its last record is, caught up: its side lane
    sent the backlog's checkpoints ahead of the records, so the last record proves the last
    checkpoint (`wire.fair_rate.sharing_lanes`). A lane whose backlog ends in records no
    checkpoint covered yet (sold while the outage ended) is caught up when the checkpoint
    before them is proven, earlier than here."""

    scenario: Scenario
    share: float
    period: float
    reread: float
    floor: float = MIN_FAIR_RATE
    heard: list[LaneHeard] = field(default_factory=list)
    value: float = 0.0

    def __post_init__(self) -> None:
        self.heard = [LaneHeard(BEFORE_THE_OUTAGE, False)] * len(self.scenario.backlogs)
        self.publish(0.0)

    def read(self, now: float) -> float:
        """What a lane reads at `now` (a `share` callable): the last value published."""
        return self.value

    def publish(self, now: float) -> None:
        lanes = sharing_lanes(self.heard, now, DEFAULT_WINDOW_SECONDS)
        quota = self.scenario.quota_at(now)
        self.value = fleet_rate(FairRateSettings("", quota, self.share, self.floor), lanes)

    def delivered(self, lane: int, now: float, before: int, after: int, done: bool) -> None:
        """Lane `lane` had delivered `before` records of its backlog and now `after`."""
        if done or after // CHECKPOINT_RECORDS > before // CHECKPOINT_RECORDS:
            self.heard[lane] = LaneHeard(now, True, caught_up=done)


def simulate(
    scenario: Scenario,
    settings: SyncSettings,
    share: Callable[[float], float | None],
    *,
    rtt: float = DEFAULT_RTT_SECONDS,
    service_seconds: float = DEFAULT_SERVICE_SECONDS,
    seed: int = 0,
    republisher: Republisher | None = None,
) -> dict[str, Any]:
    """Run the storm; `share(now)` is what a lane joining at `now` knows of its share of the
    quota (the published or configured rate; None: nothing), unless a `republisher` publishes
    it. Returns what `bench/fleet.py` reports for a real run."""
    rng = random.Random(seed)
    joining = share if republisher is None else republisher.read
    endpoint = Endpoint(scenario, rtt, service_seconds)
    lanes: list[SimLane | None] = [None] * len(scenario.backlogs)
    wakes: list[float | None] = [None] * len(lanes)
    queue: list[tuple[float, int, int, int, int]] = []  # (time, order, kind, lane, ticket)
    order = 0

    def push(moment: float, kind: int, lane: int, ticket: int = 0) -> None:
        nonlocal order
        order += 1
        heapq.heappush(queue, (moment, order, kind, lane, ticket))

    for index, joins in enumerate(scenario.joins):
        push(joins, JOIN, index)
    if republisher is not None:
        push(republisher.period, PUBLISH, -1)
        for at, _ in scenario.quota_changes:
            push(at, PUBLISH, -2)  # not rescheduled: the periodic one goes on
    finished: list[float | None] = [None] * len(lanes)
    answers: dict[tuple[int, int], int] = {}  # (lane, ticket) -> entries the quota took
    while queue:
        now, _, kind, index, ticket = heapq.heappop(queue)
        if now > SIMULATION_LIMIT_SECONDS:
            break
        if kind == PUBLISH:
            assert republisher is not None
            republisher.publish(now)
            if index == -1 and any(at is None for at in finished):
                push(now + republisher.period, PUBLISH, -1)
            continue
        resumed = scenario.resumed(now, index)
        if resumed > now:  # the host is stalled: the lane acts when it runs again
            if kind == WAKE:
                if wakes[index] != now:
                    continue
                wakes[index] = resumed
            push(resumed, kind, index, ticket)
            continue
        lane = lanes[index]
        if kind == JOIN:
            lane = lanes[index] = SimLane(
                scenario.backlogs[index], settings, now, joining(now), rng
            )
            if republisher is not None:
                push(now + rng.random() * republisher.reread, REREAD, index)
        elif kind == WAKE and wakes[index] != now:
            continue  # superseded by an earlier or later wake
        assert lane is not None
        if kind == REREAD:
            if lane.finished is not None:
                continue
            assert republisher is not None
            lane.pacer.share_changed(now, republisher.value, lane.pending)
            push(now + republisher.reread, REREAD, index)
        if kind == ANSWER:
            lane.answers.append((ticket, answers.pop((index, ticket))))
        pending = lane.pending
        for entries, sent in lane.round(now):
            answer_at, answers[(index, sent)] = endpoint.answer(now, entries)
            push(answer_at, ANSWER, index, sent)
        if republisher is not None and (lane.pending < pending or lane.finished is not None):
            backlog = scenario.backlogs[index]
            done = lane.finished is not None and finished[index] is None
            republisher.delivered(index, now, backlog - pending, backlog - lane.pending, done)
        if lane.finished is not None:
            if finished[index] is None:
                finished[index] = lane.finished - scenario.joins[index]
            wakes[index] = None
            continue
        wake = lane.next_wake(now)
        wakes[index] = wake
        if wake is not None:
            push(wake, WAKE, index)
    return summarise(scenario, finished, endpoint)


def fair_finish_times(scenario: Scenario) -> list[float]:
    """Each lane's drain time under the fluid fair schedule (the quota shared equally among
    the lanes with something left, at every moment: processor sharing), from its join."""
    joins = sorted(range(len(scenario.joins)), key=lambda i: scenario.joins[i])
    changes = sorted(scenario.quota_changes)
    finish = [0.0] * len(joins)
    active: list[tuple[float, int]] = []  # (virtual finish, lane)
    virtual, now, next_join, next_change = 0.0, 0.0, 0, 0
    while next_join < len(joins) or active:
        rate = scenario.quota_at(now)
        candidates = []
        if next_join < len(joins):
            candidates.append(scenario.joins[joins[next_join]])
        if next_change < len(changes):
            candidates.append(changes[next_change][0])
        if active:
            candidates.append(now + (active[0][0] - virtual) * len(active) / rate)
        moment = max(now, min(candidates))
        if active:
            virtual += (moment - now) * rate / len(active)
        now = moment
        while active and active[0][0] <= virtual + 1e-9:
            _, lane = heapq.heappop(active)
            finish[lane] = now - scenario.joins[lane]
        while next_join < len(joins) and scenario.joins[joins[next_join]] <= now:
            lane = joins[next_join]
            heapq.heappush(active, (virtual + scenario.backlogs[lane], lane))
            next_join += 1
        while next_change < len(changes) and changes[next_change][0] <= now:
            next_change += 1
    return finish


def ideal_seconds(scenario: Scenario) -> float:
    """The earliest the whole fleet can be drained: the quota busy from the first join on,
    never ahead of the backlog that has joined."""
    moments = sorted(zip(scenario.joins, scenario.backlogs, strict=True))
    now, left = 0.0, 0.0
    changes = sorted(scenario.quota_changes)
    for joined, backlog in moments:
        now, left = _serve(scenario, changes, now, left, joined)
        now = max(now, joined)
        left += backlog
    end, _ = _serve(scenario, changes, now, left, math.inf)
    return end


def _serve(
    scenario: Scenario, changes: list[tuple[float, float]], now: float, left: float, until: float
) -> tuple[float, float]:
    """Serve `left` entries from `now` until `until` or empty; (moment, entries left)."""
    while left > 0 and now < until:
        rate = scenario.quota_at(now)
        later = [at for at, _ in changes if at > now]
        step_end = min(until, later[0] if later else math.inf)
        if now + left / rate <= step_end:
            return now + left / rate, 0.0
        left -= (step_end - now) * rate
        now = step_end
    return now, left


def summarise(
    scenario: Scenario, finished: Sequence[float | None], endpoint: Endpoint
) -> dict[str, Any]:
    """The figures bench/fleet.py reports for a real run, from the simulated one."""
    done = [t for t in finished if t is not None]
    total = sum(endpoint.accepted_at.values())
    throttled = sum(endpoint.throttled_at.values())
    ideal = ideal_seconds(scenario)
    ends = [t + j for t, j in zip(finished, scenario.joins, strict=True) if t is not None]
    slowest = max(ends) if ends else math.inf
    # A lane's fair drain time: the fluid fair schedule's, but at least the time the fleet's
    # average share takes to earn its first request (the spread a storm needs; without the
    # floor a one-record lane joining a quiet fleet is "fair" at a millisecond). With equal
    # backlogs joining together this is every lane's same time, so the figure is the real
    # run's slowest over median lane.
    average_share = scenario.quota / len(scenario.backlogs)
    fair = [
        max(fluid, min(backlog, PUT_EVENTS_MAX_ENTRIES) / average_share)
        for fluid, backlog in zip(fair_finish_times(scenario), scenario.backlogs, strict=True)
    ]
    slowdown = [t / f for t, f in zip(finished, fair, strict=True) if t is not None and f > 0]
    timeline: list[tuple[float, int]] = [(0.0, total)]
    remaining = total
    for moment in sorted(endpoint.accepted_at):
        remaining -= endpoint.accepted_at[moment]
        timeline.append((moment, remaining))
    return {
        "terminals": len(finished),
        "terminals_not_drained": len(finished) - len(done),
        "events_accepted": total,
        "entries_throttled": throttled,
        "throttled_share": round(throttled / (total + throttled), 4) if total else 0.0,
        "requests": endpoint.requests,
        "throttled_request_share": round(endpoint.throttled_requests / endpoint.requests, 4)
        if endpoint.requests
        else 0.0,
        "drain_seconds": round(slowest, 3),
        "ideal_seconds": round(ideal, 3),
        "ratio_to_ideal": round(slowest / ideal, 3) if ideal else None,
        "fairness_slowest_over_median": round(max(slowdown) / statistics.median(slowdown), 3)
        if slowdown
        else None,
        "accepted_per_second_over_time": _per_second(endpoint.accepted_at),
        "throttled_per_second_over_time": _per_second(endpoint.throttled_at),
        "backlog_over_time": timeline,
    }


def _per_second(counts: dict[float, int]) -> list[tuple[float, float]]:
    return [(moment, counts[moment] / SAMPLE_SECONDS) for moment in sorted(counts)]
