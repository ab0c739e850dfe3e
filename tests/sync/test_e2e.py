"""End to end: journal -> engine -> real boto3 -> moto EventBridge -> rule -> SQS queue."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from posd.journal import Journal
from posd.recorder import Recorder
from tests.repo import REPO_ROOT
from tests.sync.conftest import (
    TEST_PANS,
    EngineFactory,
    Route,
    event_ids,
    fill,
    receive_all,
    secret_of,
)

DOC = REPO_ROOT / "docs" / "event-format.md"
RECORDS = 37  # not a multiple of 10: the last request is a partial one


def _doc_decrypt() -> Any:
    """The `decrypt_event` function exactly as docs/event-format.md prints it."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    return namespace["decrypt_event"]


def test_every_record_arrives_once_and_decrypts(
    recorder: Recorder,
    journal: Journal,
    make_engine: EngineFactory,
    route: Route,
    aws_endpoint: str,
    sqs_client: Any,
    kms_client: Any,
) -> None:
    ids = fill(recorder, RECORDS)
    engine = make_engine(aws_endpoint)

    report = engine.drain(timeout=30)

    assert report.completed
    assert report.delivered == RECORDS
    assert report.pending == 0
    events = receive_all(sqs_client, route.queue_url, RECORDS)
    assert sorted(event_ids(events)) == sorted(ids)  # exactly N, no duplicates without faults
    assert {event["detail"]["journal_id"] for event in events} == {recorder.journal.journal_id}
    decrypt_event = _doc_decrypt()
    by_id = {e["detail"]["event_id"]: e for e in events}
    for index, event_id in enumerate(ids):
        event = by_id[event_id]
        assert event["source"] == "posd.test"
        assert event["detail-type"] == "payment.card"
        assert event["detail"]["seq"] == index + 1
        assert decrypt_event(event, kms_client) == secret_of(index)
    assert journal.summary().delivered == RECORDS


def test_card_numbers_never_cross_in_clear(
    recorder: Recorder, make_engine: EngineFactory, route: Route, aws_endpoint: str, sqs_client: Any
) -> None:
    fill(recorder, 6)
    make_engine(aws_endpoint).drain(timeout=30)
    raw = json.dumps(receive_all(sqs_client, route.queue_url, 6))
    for pan in TEST_PANS:
        assert pan not in raw
    assert "expiry" not in raw  # the payload's field names are sealed too


def test_tampered_clear_metadata_is_detected(
    recorder: Recorder,
    make_engine: EngineFactory,
    route: Route,
    aws_endpoint: str,
    sqs_client: Any,
    kms_client: Any,
) -> None:
    fill(recorder, 1)
    make_engine(aws_endpoint).drain(timeout=30)
    (event,) = receive_all(sqs_client, route.queue_url, 1)
    event["detail"]["meta"]["amount"] = 1
    decrypt_event = _doc_decrypt()
    with pytest.raises(ValueError, match="meta"):
        decrypt_event(event, kms_client)


def test_retention_purges_delivered_records(
    recorder: Recorder, journal: Journal, make_engine: EngineFactory, aws_endpoint: str
) -> None:
    fill(recorder, 5)
    # Retention alone, as before acknowledged retention (test_acknowledged_retention.py).
    engine = make_engine(aws_endpoint, retention_seconds=0.0, acknowledged_retention=False)
    assert engine.drain(timeout=30).delivered == 5
    assert engine.purge() == 5
    assert journal.summary().delivered == 0
    assert list(journal.records()) == []


def test_status_reports_backlog_then_success(
    recorder: Recorder, make_engine: EngineFactory, aws_endpoint: str
) -> None:
    fill(recorder, 3)
    engine = make_engine(aws_endpoint)
    before = engine.status()
    assert before.state == "unknown"  # nothing sent yet: nothing known about the link
    assert before.last_success is None

    engine.drain(timeout=30)

    after = engine.status()
    assert after.pending == 0
    assert after.oldest_pending_age_seconds is None
    assert after.last_success is not None
    assert after.delivered_since_start == 3
    assert after.in_flight == 0
    assert 1 <= after.in_flight_limit <= 8
