"""A slow endpoint: PutEvents is applied but answered after the client's read timeout.

Resending with the same timeout would repeat that forever, every copy delivered and none
marked; the engine lengthens its read timeout and shrinks its requests instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from posd.journal import Journal
from posd.recorder import Recorder
from tests.sync.conftest import EngineFactory, Route, event_ids, fill, receive_all
from tests.sync.faultproxy import FaultProxy, delay

RECORDS = 30
READ_TIMEOUT_SECONDS = 0.2
MAX_READ_TIMEOUT_SECONDS = 1.0  # the longest FAST's 3 s lease allows with its connect timeout
SLOW_ANSWER_SECONDS = 0.5  # later than 0.2 s and 0.4 s, well within 0.8 s
# Sent with a 0.2 s and a 0.4 s read timeout (applied, answered too late), then with 0.8 s:
# three copies at most, and one spare for a machine too loaded to answer within 0.8 s.
MAX_COPIES = 4
DRAIN_TIMEOUT_SECONDS = 20.0


@pytest.fixture
def sync_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    with capture_logs() as logs:
        yield logs
    structlog.reset_defaults()


def test_late_answers_lengthen_the_read_timeout_instead_of_a_duplicate_storm(
    recorder: Recorder,
    journal: Journal,
    proxy: FaultProxy,
    make_engine: EngineFactory,
    route: Route,
    sqs_client: Any,
    sync_logs: list[MutableMapping[str, Any]],
) -> None:
    ids = fill(recorder, RECORDS)
    proxy.default = delay(SLOW_ANSWER_SECONDS)  # every request is applied, and answered late
    engine = make_engine(
        proxy.url,
        read_timeout_seconds=READ_TIMEOUT_SECONDS,
        max_read_timeout_seconds=MAX_READ_TIMEOUT_SECONDS,
    )

    report = engine.drain(timeout=DRAIN_TIMEOUT_SECONDS)

    assert report.completed  # the backlog drained
    assert journal.summary().pending == 0
    copies = Counter(event_ids(receive_all(sqs_client, route.queue_url, RECORDS)))
    assert set(copies) == set(ids)
    assert max(copies.values()) <= MAX_COPIES, copies.most_common(3)
    assert max(copies.values()) >= 2  # the first requests did time out (and were applied)
    status = engine.status()
    assert SLOW_ANSWER_SECONDS < status.read_timeout_seconds <= MAX_READ_TIMEOUT_SECONDS
    assert not status.slow_endpoint  # answered again
    # One warning per streak of timeouts, however many requests timed out in it.
    slow = [e for e in sync_logs if e["event"] == "sync.slow_endpoint"]
    answering = [e for e in sync_logs if e["event"] == "sync.endpoint_answering"]
    assert 1 <= len(slow) == len(answering)
    assert sum(e["read_timeouts"] for e in answering) > len(slow)
    assert slow[0]["log_level"] == "warning"
    assert slow[0]["read_timeout_seconds"] > READ_TIMEOUT_SECONDS
