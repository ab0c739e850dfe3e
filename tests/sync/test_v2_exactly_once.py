"""Exactly once at the bus with api = "v2": the engine drains a journal through a fault proxy
that loses answers (delivered, never answered) or answers too late; the engine re-sends, the
v2 endpoint deduplicates on DeduplicationId = event_id, and the queue holds one message per
record before any consumer-side dedupe."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from posd.journal import Journal
from posd.recorder import Recorder
from tests.sync.conftest import EngineFactory, V2Route, event_ids, fill, receive_all
from tests.sync.faultproxy import LOSE, Fault, FaultProxy, delay
from tests.sync.test_crash import RECORDS as CRASH_RECORDS
from tests.sync.test_crash import kill_and_restart

RECORDS = 45
LATE_SECONDS = 1.6  # past the read timeout of FAST (1 s)


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([LOSE, LOSE, LOSE], id="answers-lost"),
        pytest.param(
            [delay(LATE_SECONDS), delay(LATE_SECONDS)], id="answered-after-the-read-timeout"
        ),
    ],
)
def test_resends_reach_the_queue_once(
    recorder: Recorder,
    make_v2_engine: EngineFactory,
    v2_route: V2Route,
    sqs_client: Any,
    script: list[Fault],
) -> None:
    ids = fill(recorder, RECORDS)
    proxy = FaultProxy(v2_route.endpoint.endpoint_url)
    try:
        proxy.script.extend(script)
        engine = make_v2_engine(proxy.url, max_entries_per_request=10)
        report = engine.drain(timeout=60)
        sent = Counter(proxy.sent_event_ids())
    finally:
        proxy.down()

    assert report.completed and report.pending == 0
    resent = [event_id for event_id, times in sent.items() if times > 1]
    assert resent, "the faults must have made the engine send some records again"
    # a late original may still be on its way: the settle time outlasts the proxy's delay
    events = receive_all(sqs_client, v2_route.queue_url, RECORDS, settle=LATE_SECONDS + 0.5)
    assert v2_route.endpoint.stats.deduplicated >= len(resent)
    assert Counter(event_ids(events)) == Counter(ids)  # each exactly once: no consumer dedupe


def test_order_within_the_terminal_group(
    recorder: Recorder, make_v2_engine: EngineFactory, v2_route: V2Route, sqs_client: Any
) -> None:
    """One request in flight: the queue receives the lane's records in journal order."""
    ids = fill(recorder, 30)
    engine = make_v2_engine(
        v2_route.endpoint.endpoint_url,
        max_entries_per_request=7,
        min_in_flight=1,
        initial_in_flight=1,
        max_in_flight=1,
    )

    assert engine.drain(timeout=30).delivered == 30
    events = receive_all(sqs_client, v2_route.queue_url, 30)
    assert event_ids(events) == ids


def test_sigkill_mid_drain_then_restart_exactly_once(
    recorder: Recorder, journal: Journal, v2_route: V2Route, sqs_client: Any
) -> None:
    """SIGKILLs land between a request and its marking, and leave leases to expire: the
    restarted drain re-sends, and the bus keeps the queue at one copy per record."""
    ids = fill(recorder, CRASH_RECORDS)
    proxy = FaultProxy(v2_route.endpoint.endpoint_url)
    try:
        received = kill_and_restart(
            journal, proxy, v2_route.bus_arn, sqs_client, v2_route.queue_url
        )
        sent = Counter(proxy.sent_event_ids())
    finally:
        proxy.down()

    assert Counter(received) == Counter(ids)
    assert sum(sent.values()) > len(ids)  # the kills did cause resends: the bus absorbed them
