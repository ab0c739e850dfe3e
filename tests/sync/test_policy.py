"""The engine's policies alone: full-jitter backoff, AIMD window, link state, entry verdicts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.backoff import FullJitterBackoff
from sync.link import OFFLINE, ONLINE, LinkMonitor
from sync.outbox import OutboxRecord, WrappedKey
from sync.results import judge
from sync.window import ConcurrencyWindow


@given(st.integers(min_value=1, max_value=200))
def test_backoff_is_full_jitter_within_the_capped_window(attempt: int) -> None:
    backoff = FullJitterBackoff(0.5, 30.0)
    delay = backoff.delay(attempt)
    assert 0.0 <= delay <= min(30.0, 0.5 * 2 ** (attempt - 1))


def test_backoff_jitters_and_grows() -> None:
    backoff = FullJitterBackoff(1.0, 1000.0)
    early = [backoff.delay(1) for _ in range(200)]
    late = [backoff.delay(8) for _ in range(200)]
    assert len(set(early)) > 100  # jittered, not fixed
    assert sum(late) / len(late) > 10 * sum(early) / len(early)


def test_window_aimd() -> None:
    window = ConcurrencyWindow(1, 4, 8, 0.5)
    first = window.ticket()
    second = window.ticket()
    window.on_throttle(first)
    assert window.limit == 2
    window.on_throttle(second)  # same congestion event (sent before the decrease)
    assert window.limit == 2
    window.on_throttle(window.ticket())
    assert window.limit == 1
    window.on_throttle(window.ticket())
    assert window.limit == 1  # floor
    for _ in range(100):
        window.on_success()
    assert window.limit == 8  # ceiling; growth is ~ +1 per window of successes
    window.reset_to_minimum()
    assert window.limit == 1


def test_window_grows_about_one_per_round_trip() -> None:
    window = ConcurrencyWindow(1, 4, 64, 0.5)
    for _ in range(4):  # one full window of clean responses
        window.on_success()
    assert window.limit == 4 or window.limit == 5
    for _ in range(5 + 6):
        window.on_success()
    assert window.limit in (6, 7)


def _link() -> LinkMonitor:
    return LinkMonitor(3, FullJitterBackoff(0.1, 1.0), FullJitterBackoff(2.0, 8.0), 2.0)


def test_link_goes_offline_after_consecutive_failures_and_back() -> None:
    link = _link()
    assert not link.record_failure(100.0, "transport: refused")
    assert not link.record_failure(100.5, "transport: refused")
    assert link.state == ONLINE
    assert link.record_failure(101.0, "transport: refused")
    assert link.state == OFFLINE
    assert link.offline_since == 100.0
    assert not link.may_send(101.0)
    assert 103.0 <= link.next_send_at() <= 111.0  # probe_min + jitter within the bounds
    assert link.record_success(120.0)
    after = link.snapshot()  # a fresh read: the asserts above narrowed the attributes
    assert after.state == ONLINE
    assert after.offline_since is None
    assert link.may_send(120.0)


def test_a_success_resets_the_failure_streak() -> None:
    link = _link()
    link.record_failure(1.0, "x")
    link.record_failure(2.0, "x")
    link.record_success(3.0)
    link.record_failure(4.0, "x")
    link.record_failure(5.0, "x")
    assert link.state == ONLINE


def _records(n: int) -> list[OutboxRecord]:
    key = WrappedKey("k", "kms", "arn", "SYMMETRIC_DEFAULT", b"w")
    return [
        OutboxRecord(i, f"e{i}", "k", "2026-01-01T00:00:00Z", None, {}, "", b"", b"", b"", key, 0)
        for i in range(1, n + 1)
    ]


def test_verdicts_per_entry() -> None:
    records = _records(5)
    results = [
        {"EventId": "r1"},
        {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
        {"ErrorCode": "AccessDeniedException", "ErrorMessage": "no"},
        {"ErrorCode": "InternalFailure"},
        {},  # neither id nor code: not delivered, retried
    ]
    verdict = judge(records, results)  # type: ignore[arg-type]
    assert [(d.seq, d.remote_event_id) for d in verdict.delivered] == [(1, "r1")]
    assert [(r.seq, why) for r, why in verdict.retry] == [
        (2, "ThrottlingException: slow down"),
        (4, "InternalFailure"),
        (5, "NoEventId"),
    ]
    assert [(r.seq, why) for r, why in verdict.quarantine] == [(3, "AccessDeniedException: no")]
    assert verdict.throttled


def test_verdict_needs_one_result_per_entry() -> None:
    with pytest.raises(ValueError, match="results"):
        judge(_records(2), [{"EventId": "x"}])
