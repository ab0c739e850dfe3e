"""The engine's policies alone: full-jitter backoff, AIMD window, link state, entry verdicts,
and the adaptation to late answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.eventbridge.results import judge
from sync.outbox import OutboxRecord
from sync.pacing.backoff import FullJitterBackoff
from sync.pacing.link import OFFLINE, ONLINE, UNKNOWN, LinkMonitor
from sync.pacing.timeouts import RELAX_AFTER_ANSWERS, TimeoutAdapter, TimeoutSnapshot
from sync.pacing.window import ConcurrencyWindow
from wire.keys import WrappedKey


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
    window.on_congestion(first)
    assert window.limit == 2
    window.on_congestion(second)  # same congestion event (sent before the decrease)
    assert window.limit == 2
    window.on_congestion(window.ticket())
    assert window.limit == 1
    window.on_congestion(window.ticket())
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
    assert link.state == UNKNOWN  # never answered, not offline yet
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
    records = _records(6)
    results = [
        {"EventId": "r1"},
        {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
        {"ErrorCode": "MalformedDetail", "ErrorMessage": "no"},
        {"ErrorCode": "InternalFailure"},
        {},  # neither id nor code: not delivered, retried
        {"ErrorCode": "AccessDeniedException", "ErrorMessage": "denied"},
    ]
    verdict = judge(records, results)  # type: ignore[arg-type]
    assert [(d.seq, d.remote_event_id) for d in verdict.delivered] == [(1, "r1")]
    assert [(r.seq, why) for r, why in verdict.retry] == [
        (2, "ThrottlingException: slow down"),
        (4, "InternalFailure"),
        (5, "NoEventId"),
    ]
    assert [(r.seq, why) for r, why in verdict.quarantine] == [(3, "MalformedDetail: no")]
    # The configuration's fault, not the record's: kept pending, reported as misconfigured.
    assert [(r.seq, why) for r, why in verdict.misconfigured] == [
        (6, "AccessDeniedException: denied")
    ]
    assert verdict.throttled


def test_verdict_needs_one_result_per_entry() -> None:
    with pytest.raises(ValueError, match="results"):
        judge(_records(2), [{"EventId": "x"}])


def test_read_timeouts_lengthen_the_timeout_and_shrink_requests_once_per_spell() -> None:
    adapter = TimeoutAdapter(read_timeout=1.0, max_read_timeout=5.0, max_entries=10)
    in_flight = [adapter.generation for _ in range(3)]  # three requests out, then all late
    assert adapter.on_read_timeout(in_flight[0])  # starts a streak: the engine logs it
    assert (adapter.read_timeout, adapter.entries_per_request) == (2.0, 5)
    assert not adapter.on_read_timeout(in_flight[1])  # same spell: not again
    assert not adapter.on_read_timeout(in_flight[2])
    assert (adapter.read_timeout, adapter.entries_per_request) == (2.0, 5)
    for expected in ((4.0, 2), (5.0, 1), (5.0, 1)):  # capped, and at least one entry
        assert not adapter.on_read_timeout(adapter.generation)
        assert (adapter.read_timeout, adapter.entries_per_request) == expected
    assert adapter.snapshot().timeouts_in_streak == 6
    assert adapter.on_answer(latency=4.5) == 6  # ends the streak of six
    assert adapter.on_answer(latency=4.5) == 0
    assert adapter.snapshot() == TimeoutSnapshot(5.0, 3, 0)  # +1 entry per answer


def test_read_timeout_steps_back_down_only_after_calm_answers() -> None:
    adapter = TimeoutAdapter(read_timeout=1.0, max_read_timeout=8.0, max_entries=10)
    for _ in range(3):
        adapter.on_read_timeout(adapter.generation)
    assert adapter.read_timeout == 8.0
    for _ in range(3 * RELAX_AFTER_ANSWERS):
        adapter.on_answer(latency=3.0)  # answered, but too slowly for a 4 s timeout
    assert adapter.read_timeout == 8.0
    for _ in range(RELAX_AFTER_ANSWERS - 1):
        adapter.on_answer(latency=0.1)
    assert adapter.read_timeout == 8.0
    adapter.on_answer(latency=0.1)
    assert adapter.read_timeout == 4.0  # one step at a time
    for _ in range(10 * RELAX_AFTER_ANSWERS):
        adapter.on_answer(latency=0.1)
    assert adapter.read_timeout == 1.0  # never below the configured timeout
    assert adapter.entries_per_request == 10


@given(
    st.lists(
        st.one_of(st.booleans(), st.floats(min_value=0.0, max_value=100.0)),
        max_size=200,
    )
)
def test_timeout_adapter_stays_within_its_bounds(events: list[bool | float]) -> None:
    adapter = TimeoutAdapter(read_timeout=0.5, max_read_timeout=30.0, max_entries=10)
    for event in events:
        if isinstance(event, bool):  # a timeout, of a current (True) or older request
            adapter.on_read_timeout(adapter.generation - (0 if event else 1))
        else:
            adapter.on_answer(latency=event)
        assert 0.5 <= adapter.read_timeout <= 30.0
        assert 1 <= adapter.entries_per_request <= 10
