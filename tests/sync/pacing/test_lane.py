"""Fleet-aware start (issue 25): a lane that knows its share of the account's quota starts at
it, spreads its first request over the time the share takes to earn it, is not cut below it
by a lone throttle but backs off below it when throttled again there (a quota cut), and probes
upward from it; a lane that knows nothing slow-starts as before. Time is passed in
(an injected clock: no sleeping)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.eventbridge.retry import RetryPolicy
from sync.pacing.backoff import FullJitterBackoff
from sync.pacing.lane import SHARE_LEVEL_RECOVERIES, LanePacer
from sync.settings import SyncSettings

T0 = 5_000.0
BATCH = 10
SHARE = 0.5  # entries/s: a 5,000/s quota over 10,000 lanes
CONFIGURED = SyncSettings(fleet_quota_per_second=5_000.0, fleet_size=10_000)


def pacer(settings: SyncSettings = CONFIGURED, draw: float = 0.0) -> LanePacer:
    """A pacer whose random draws (first-request spread, level time, jitter) are `draw`."""
    retry = RetryPolicy(FullJitterBackoff(0.5, 10.0))
    return LanePacer(settings, T0, retry, uniform=lambda: draw)


def first_request_at(lane: LanePacer, start: float) -> float:
    """When the first full request may go (the limiter's own answer, checked by granting)."""
    wait = lane.grant(BATCH, start).wait_seconds
    assert lane.grant(BATCH, start + wait).entries == BATCH
    return start + wait


def test_a_configured_lane_starts_at_its_share_and_spreads_its_first_request() -> None:
    latest = pacer(draw=0.0)
    latest.started(T0, None, backlog=100)
    assert latest.limiter.snapshot().fill_rate == pytest.approx(SHARE)
    assert first_request_at(latest, T0) == pytest.approx(T0 + BATCH / SHARE)  # 20 s
    soonest = pacer(draw=1.0)
    soonest.started(T0, None, backlog=100)
    assert first_request_at(soonest, T0) == pytest.approx(T0)


@given(draw=st.floats(0.0, 1.0), backlog=st.integers(1, 10_000))
def test_the_first_request_lands_within_the_time_the_share_earns_it(
    draw: float, backlog: int
) -> None:
    lane = pacer(draw=draw)
    lane.started(T0, None, backlog)
    first = min(backlog, BATCH)
    wait = lane.grant(first, T0).wait_seconds
    assert 0.0 <= wait <= first / SHARE + 1e-9


def test_the_published_rate_comes_before_the_configuration() -> None:
    lane = pacer()
    lane.started(T0, 2.0, backlog=100)
    assert lane.limiter.snapshot().fill_rate == pytest.approx(2.0)
    assert lane.share(None) == pytest.approx(SHARE)
    assert lane.share(0.0) == pytest.approx(SHARE)  # a published 0 means nothing known
    assert pacer(SyncSettings(lane_rate_per_second=0.25)).share(None) == 0.25


def test_with_nothing_known_the_lane_slow_starts_as_before() -> None:
    lane = pacer(SyncSettings())
    lane.started(T0, None, backlog=100)
    assert lane.share(None) is None
    assert lane.limiter.starting
    assert lane.grant(BATCH, T0).entries == BATCH  # one request at once, no wait
    lane.sent(BATCH, T0)
    assert lane.grant(BATCH, T0).wait_seconds == math.inf  # the next after an answer


def throttle(lane: LanePacer, at: float) -> float | None:
    """A request at `at`, wholly throttled; the lane's rate after the answer."""
    ticket = lane.sent(BATCH, at)
    lane.answered(ticket, BATCH, 0, True, at + 0.05)
    return lane.limiter.snapshot().fill_rate


def test_a_lone_throttle_leaves_a_lane_at_its_share() -> None:
    share = 4 * SyncSettings().rate_min_per_second  # well above the limiter's own floor
    lane = pacer(SyncSettings(lane_rate_per_second=share))
    lane.started(T0, None, backlog=1_000)
    now = first_request_at(lane, T0)
    recovery = CONFIGURED.rate_recovery_seconds
    for step in range(5):  # throttles further apart than the recovery time: others probing
        rate = throttle(lane, now + step * 2 * recovery)
        assert rate is not None and rate >= share - 1e-9


def test_a_lane_throttled_again_at_its_share_backs_off_below_it() -> None:
    # The quota is not what the share assumed (cut, or taken by other producers): the floor
    # would hold the whole fleet over it until the cloud republishes.
    share = 4 * SyncSettings().rate_min_per_second
    lane = pacer(SyncSettings(lane_rate_per_second=share))
    lane.started(T0, None, backlog=1_000)
    now = first_request_at(lane, T0)
    throttle(lane, now)
    rate = throttle(lane, now + 1.0)
    assert rate is not None and rate < share * CONFIGURED.rate_decrease_factor + 1e-9


def test_a_lane_cut_below_its_share_is_not_lifted_back_by_a_reread() -> None:
    share = 4 * SyncSettings().rate_min_per_second  # published: well above the limiter's floor
    lane = pacer(draw=1.0)
    lane.started(T0, share, backlog=10_000)
    now = first_request_at(lane, T0)
    throttle(lane, now)
    cut = throttle(lane, now + 1.0)
    assert cut is not None and cut < share
    lane.share_changed(now + 2.0, 1.2 * share, 10_000)  # lanes finished: a higher share
    assert lane.limiter.snapshot().fill_rate == pytest.approx(cut)
    assert cut == pytest.approx(share * CONFIGURED.rate_decrease_factor)  # one step down
    lane.share_changed(now + 3.0, share / 2, 10_000)  # the quota cut published: down to it
    assert lane.limiter.snapshot().fill_rate == pytest.approx(share / 2)
    # It grows back along the curve, and its share is its floor again once it is there.
    lane.grant(BATCH, now + 10 * CONFIGURED.rate_recovery_seconds)
    back = lane.limiter.snapshot().fill_rate
    assert back is not None and back >= share / 2
    assert throttle(lane, now + 11 * CONFIGURED.rate_recovery_seconds) == pytest.approx(share / 2)


def test_after_holding_level_the_lane_probes_upward() -> None:
    lane = pacer(draw=1.0)  # level for the longest: 1.5 x the level recoveries
    lane.started(T0, None, backlog=10_000)
    recovery = CONFIGURED.rate_recovery_seconds
    level_end = T0 + 1.5 * SHARE_LEVEL_RECOVERIES * recovery
    lane.grant(BATCH, level_end - 1.0)  # the limiter follows its curve when asked
    assert lane.limiter.snapshot().fill_rate == pytest.approx(SHARE)
    lane.grant(BATCH, level_end + 2 * recovery)
    grown = lane.limiter.snapshot().fill_rate
    # Some times the share, not botocore's absolute 0.4/s³ (3,200 entries/s after 20 s).
    assert grown is not None and SHARE < grown < 10 * SHARE


def test_a_lane_that_drains_at_its_share_never_probes() -> None:
    lane = pacer(draw=1.0)
    lane.started(T0, None, backlog=20)  # 40 s at its share: level that long
    lane.grant(BATCH, T0 + 39.0)
    assert lane.limiter.snapshot().fill_rate == pytest.approx(SHARE)


def test_a_throttle_hands_out_no_tokens() -> None:
    """A throttled lane used to get a fresh random part of a request after every throttle,
    so a lane answered quickly sent again at once, throttled again, in a loop."""
    lane = pacer(draw=1.0)
    lane.started(T0, None, backlog=1_000)
    now, sent = T0, 0
    for _ in range(500):  # ten seconds of asking every 20 ms, every request throttled
        granted = lane.grant(BATCH, now)
        if granted.entries:
            ticket = lane.sent(granted.entries, now)
            sent += granted.entries
            lane.answered(ticket, granted.entries, 0, True, now + 0.01)
        now += 0.02
    # The request it held at the start, and no more than its share since.
    assert sent <= BATCH + SHARE * (now - T0) + 1


def test_reconnecting_starts_small_again_at_the_share() -> None:
    lane = pacer(replace(CONFIGURED, initial_in_flight=8))
    lane.started(T0, None, backlog=100)
    assert lane.allowed_in_flight(probing=False) == 8
    assert lane.allowed_in_flight(probing=True) == 1
    lane.reconnected(T0 + 600.0, 1.5, backlog=40)
    assert lane.allowed_in_flight(probing=False) == CONFIGURED.min_in_flight
    assert lane.limiter.snapshot().fill_rate == pytest.approx(1.5)


def test_the_lease_is_whole_requests_the_share_lets_go_within_half_a_lease() -> None:
    """Whole requests: a part-request lease sized by the tokens a lane happened to hold made
    its second request's wait undo its random start, and the whole fleet sent its second
    requests in the same second."""
    half_lease = CONFIGURED.lease_seconds / 2  # 15 entries at the share
    for draw in (0.0, 0.3, 0.5, 0.99):
        lane = pacer(draw=draw)
        lane.started(T0, None, backlog=1_000)
        affordable = draw * BATCH + SHARE * half_lease  # the head start and what it earns
        limit = lane.lease_limit(False, BATCH, T0)
        assert limit % BATCH == 0
        assert limit == max(BATCH, math.floor(affordable) // BATCH * BATCH)


def test_a_draining_lane_rereading_a_higher_fair_rate_rises_to_it_at_once() -> None:
    # Lanes that finished their backlogs leave their share to those still draining: the
    # consumer republishes a higher rate, and a lane re-reading it goes that fast now.
    lane = pacer(draw=1.0)
    lane.started(T0, None, backlog=10_000)
    lane.share_changed(T0 + 30.0, 4 * SHARE, 10_000)
    assert lane.limiter.snapshot().fill_rate == pytest.approx(4 * SHARE)
    rate = throttle(lane, T0 + 31.0)  # throttled once, it is not cut below the new share
    assert rate is not None and rate >= 4 * SHARE - 1e-9


def test_a_lane_with_one_request_left_keeps_its_rate_when_the_share_rises() -> None:
    # In a fleet of equal backlogs the lanes that finished first were ahead by their random
    # start: the quota is still full, and raised, every last request would come at once.
    last = pacer(draw=1.0)
    last.started(T0, None, backlog=2 * CONFIGURED.max_entries_per_request)
    last.share_changed(T0 + 30.0, 2 * SHARE, CONFIGURED.max_entries_per_request)
    assert last.limiter.snapshot().fill_rate == pytest.approx(SHARE)
    more = pacer(draw=1.0)
    more.started(T0, None, backlog=10_000)
    more.share_changed(T0 + 30.0, 2 * SHARE, CONFIGURED.max_entries_per_request + 1)
    assert more.limiter.snapshot().fill_rate == pytest.approx(2 * SHARE)
    last.share_changed(T0 + 45.0, SHARE / 2, CONFIGURED.max_entries_per_request)
    assert last.limiter.snapshot().fill_rate == pytest.approx(SHARE / 2)  # down: always


def test_a_lower_fair_rate_caps_the_lane_and_its_floor() -> None:
    lane = pacer(draw=1.0)
    lane.started(T0, 4 * SHARE, backlog=10_000)
    lane.share_changed(T0 + 30.0, SHARE, 10_000)
    assert lane.limiter.snapshot().fill_rate == pytest.approx(SHARE)
    lane.share_changed(T0 + 60.0, None, 10_000)  # nothing read: the lane keeps what it has
    assert lane.limiter.snapshot().fill_rate == pytest.approx(SHARE)


def test_a_slow_starting_lane_ignores_a_fair_rate_read_later() -> None:
    lane = pacer(SyncSettings())
    lane.started(T0, None, backlog=100)
    lane.share_changed(T0 + 30.0, 2.0, 100)
    assert lane.limiter.starting


def test_a_share_below_the_limiters_own_floor_is_followed_down() -> None:
    # 3,750/s over 10,000 lanes: 0.375, below `rate_min_per_second` (0.5); clamped to it,
    # the fleet stayed at 5,000/s over a cut quota.
    lane = pacer(draw=1.0)
    lane.started(T0, SHARE, backlog=10_000)
    lane.share_changed(T0 + 30.0, 0.75 * SHARE, 10_000)
    assert lane.limiter.snapshot().fill_rate == pytest.approx(0.75 * SHARE)


def probed(lane: LanePacer, at: float) -> float:
    """The lane's rate at `at`, as it follows its curve when a batch waits."""
    lane.grant(BATCH, at)
    rate = lane.limiter.snapshot().fill_rate
    assert rate is not None
    return rate


PROBE_ONCE = replace(CONFIGURED, probe_once=True)


def refused_probe(lane: LanePacer) -> float:
    """Start `lane`, let it probe above its share, and throttle the probe; returns when."""
    lane.started(T0, None, backlog=100_000)
    recovery = CONFIGURED.rate_recovery_seconds
    probe = T0 + 1.5 * SHARE_LEVEL_RECOVERIES * recovery + 2 * recovery
    assert probed(lane, probe) > SHARE
    throttle(lane, probe)
    return probe


def test_a_refused_probe_backs_off_below_the_share_then_holds_it_until_the_share_rises() -> None:
    # The probe found the ceiling: the fleet's shares fill the quota, and probing again every
    # few recovery times kept a whole fleet over it (10,000 lanes of 100 records: 30%).
    lane = pacer(PROBE_ONCE, draw=1.0)
    probe = refused_probe(lane)
    assert lane.limiter.snapshot().fill_rate == pytest.approx(SHARE * 0.7)  # the decrease factor
    recovery = CONFIGURED.rate_recovery_seconds
    for later in (2 * recovery, 10 * recovery, 60 * recovery):
        assert probed(lane, probe + later) == pytest.approx(SHARE)
    rose = probe + 61 * recovery
    lane.share_changed(rose, 2 * SHARE, 100_000)  # lanes finished: spare quota, probe again
    assert probed(lane, rose + 30 * recovery) > 2 * SHARE


@given(draw=st.floats(0.0, 1.0), after=st.floats(0.0, 6_000.0))
def test_after_a_refused_probe_the_lane_never_goes_above_its_share(
    draw: float, after: float
) -> None:
    lane = pacer(PROBE_ONCE, draw=draw)
    probe = refused_probe(lane)
    assert probed(lane, probe + after) <= SHARE + 1e-9


def test_by_default_a_refused_probe_is_cut_along_the_cubic_curve_as_before() -> None:
    lane = pacer(draw=1.0)
    probe = refused_probe(lane)
    rate = lane.limiter.snapshot().fill_rate
    assert rate is not None and rate >= SHARE - 1e-9  # a lone throttle: not below the share
    assert probed(lane, probe + 30 * CONFIGURED.rate_recovery_seconds) > SHARE
