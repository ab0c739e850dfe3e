"""Delivery through the fault proxy: nothing lost, only retryable failures retried,
non-retryable ones quarantined with their reason, duplicates only of the same event_id."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from posd.journal import Journal
from posd.recorder import Recorder
from tests.conftest import query_file
from tests.sync.conftest import FAST, EngineFactory, Route, event_ids, fill, receive_all
from tests.sync.faultproxy import DROP, LOSE, FaultProxy, delay, http_error

RECORDS = 30
# The proxy times an answer from the request's arrival, the client from its sending: an
# answer the proxy wrote this close to the read timeout may have come too late for the client.
CLIENT_CLOCK_MARGIN_SECONDS = 0.25
# For the tests of per-entry failures: a read timeout long enough that a slow answer from the
# shared emulator late in a full run is not a timeout. A timeout resends its whole request
# (at-least-once, deduplicated by event_id downstream), which is not what they count.
PATIENT_READ_TIMEOUT_SECONDS = 5.0
PATIENT = {
    "read_timeout_seconds": PATIENT_READ_TIMEOUT_SECONDS,
    "max_read_timeout_seconds": PATIENT_READ_TIMEOUT_SECONDS,
    "lease_seconds": 2 * (FAST.connect_timeout_seconds + PATIENT_READ_TIMEOUT_SECONDS),
}


def _quarantine_reasons(journal: Journal) -> dict[str, str]:
    rows = query_file(
        journal,
        "SELECT r.event_id, o.last_error FROM records r JOIN delivery.outcomes o "
        "ON o.seq = r.seq WHERE o.state = 'quarantined'",
    )
    return {row[0]: row[1] for row in rows}


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param([DROP, DROP], id="dropped-connections"),
        pytest.param(
            [http_error(500, "InternalFailure"), http_error(503, "ServiceUnavailable")], id="5xx"
        ),
        pytest.param([delay(1.5)], id="read-timeout"),
        pytest.param([LOSE, LOSE], id="answered-then-lost"),
        pytest.param([http_error(400, "ThrottlingException")] * 3, id="request-throttled"),
    ],
)
def test_whole_request_faults_lose_nothing(
    faults: list[Any],
    recorder: Recorder,
    journal: Journal,
    proxy: FaultProxy,
    make_engine: EngineFactory,
    route: Route,
    sqs_client: Any,
) -> None:
    ids = fill(recorder, RECORDS)
    proxy.script.extend(faults)

    report = make_engine(proxy.url).drain(timeout=30)

    assert report.completed
    assert journal.summary().pending == 0
    received = event_ids(receive_all(sqs_client, route.queue_url, RECORDS))
    assert set(received) == set(ids)  # nothing lost, nothing foreign
    # Only a request delivered without its answer reaching the engine (lost, or answered
    # after the client timed out: injected, or a slow upstream on a loaded machine) may
    # duplicate, and then only the events of that request.
    duplicates = {eid for eid, n in Counter(received).items() if n > 1}
    too_late = FAST.read_timeout_seconds - CLIENT_CLOCK_MARGIN_SECONDS
    unanswered = [
        s
        for s in proxy.seen
        if s.fault in ("lose", "delay") or (s.answered_after or 0.0) >= too_late
    ]
    assert duplicates <= {eid for s in unanswered for eid in s.event_ids}
    if any(s.fault == "lose" for s in unanswered):
        assert duplicates  # lost answers really were resent, with the same event_ids
    assert not proxy.script  # every injected fault was met and got past
    # The faulted requests' events were all sent again afterwards.
    faulted = {eid for s in proxy.seen if s.fault != "pass" for eid in s.event_ids}
    assert all(Counter(proxy.sent_event_ids())[eid] >= 2 for eid in faulted)


def test_per_entry_failures(
    recorder: Recorder,
    journal: Journal,
    proxy: FaultProxy,
    make_engine: EngineFactory,
    route: Route,
    sqs_client: Any,
) -> None:
    ids = fill(recorder, RECORDS)
    throttled, internal, denied, malformed = ids[3], ids[14], ids[7], ids[22]
    proxy.fail_entry(throttled, "ThrottlingException", times=2)
    proxy.fail_entry(internal, "InternalFailure", times=1)
    proxy.fail_entry(denied, "InvalidArgument")
    proxy.fail_entry(malformed, "MalformedDetail")

    report = make_engine(proxy.url, **PATIENT).drain(timeout=30)

    assert report.completed
    assert report.quarantined == 2
    summary = journal.summary()
    assert (summary.pending, summary.quarantined, summary.delivered) == (0, 2, RECORDS - 2)
    reasons = _quarantine_reasons(journal)
    assert reasons[denied].startswith("InvalidArgument: injected")
    assert reasons[malformed].startswith("MalformedDetail")
    sent = Counter(proxy.sent_event_ids())
    assert sent[throttled] == 3
    assert sent[internal] == 2
    assert sent[denied] == 1
    assert sent[malformed] == 1
    # Only the failed entries were resubmitted: everything else went exactly once.
    assert all(n == 1 for eid, n in sent.items() if eid not in {throttled, internal})
    received = event_ids(receive_all(sqs_client, route.queue_url, RECORDS - 2))
    assert sorted(received) == sorted(set(ids) - {denied, malformed})


def test_retry_quarantined_delivers_after_the_cause_is_fixed(
    recorder: Recorder, journal: Journal, proxy: FaultProxy, make_engine: EngineFactory
) -> None:
    ids = fill(recorder, 4)
    proxy.fail_entry(ids[1], "MalformedDetail", times=1)
    engine = make_engine(proxy.url)
    assert engine.drain(timeout=30).quarantined == 1

    assert journal.retry_quarantined() == 1
    report = engine.drain(timeout=30)

    assert report.delivered == 1
    assert journal.summary().quarantined == 0


def test_oversize_record_is_quarantined_and_the_rest_flow(
    recorder: Recorder, journal: Journal, make_engine: EngineFactory, aws_endpoint: str
) -> None:
    fill(recorder, 3)
    big = recorder.record("payment.card", {"note": "x" * 3000}, b"secret" * 400)
    engine = make_engine(aws_endpoint, max_request_bytes=4096)

    report = engine.drain(timeout=30)

    assert report.delivered == 3
    assert report.quarantined == 1
    assert _quarantine_reasons(journal)[big.event_id].startswith("EventTooLarge")


def test_throttling_shrinks_the_window_and_it_grows_back(
    recorder: Recorder, proxy: FaultProxy, make_engine: EngineFactory
) -> None:
    ids = fill(recorder, 200)
    for event_id in ids[:10]:
        proxy.fail_entry(event_id, "ThrottlingException", times=1)
    engine = make_engine(proxy.url, initial_in_flight=8, max_in_flight=8)
    limits: list[int] = []

    engine.drain(timeout=30, progress=lambda _: limits.append(engine.status().in_flight_limit))

    # Multiplicative decrease (8 -> 4, once per round trip, not per entry). The progress
    # callback samples once per round, and on a busy machine a round can also collect the
    # answers that grow the window again (+1 each): allow for one such step before sampling.
    assert 1 <= min(limits) <= 5
    assert limits[-1] > min(limits)  # additive increase afterwards
