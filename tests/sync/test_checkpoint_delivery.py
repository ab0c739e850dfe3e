"""Checkpoints reach the bus through the engine's client: moto's EventBridge routes them to
SQS with exactly the `posd.checkpoint/1` fields, and a consumer proves each range with them."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from posd.assembly import clients_for
from posd.journal import Journal, JournalSettings
from posd.recorder import Recorder
from sync.pacing.backoff import FullJitterBackoff
from sync.side_events import SideEventSender, SideOrigin
from tests.sync.conftest import (
    FAST,
    SOURCE,
    STORE_ID,
    TERMINAL_ID,
    EngineFactory,
    Route,
    emulator_session,
    fill,
    receive_all,
    record_events,
    secret_of,
)
from wire.envelope import chain_next
from wire.events import CHECKPOINT_DETAIL_TYPE, CHECKPOINT_SCHEMA

EVERY = 5
RECORDS = 12  # two checkpoints by count (1..5, 6..10); 11..12 wait for the timer
TIMER_SECONDS = 1.0
WAIT_SECONDS = 20.0
CHECKPOINT_FIELDS = {
    "schema",
    "event_id",
    "journal_id",
    "store_id",
    "terminal_id",
    "first_seq",
    "last_seq",
    "count",
    "chain_before",
    "chain",
    "created_at",
}


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """The sync fixtures' journal, cutting a checkpoint every five records or second."""
    settings = JournalSettings(
        checkpoint_every_records=EVERY, checkpoint_every_seconds=TIMER_SECONDS
    )
    with Journal.open(tmp_path / "state", settings) as opened:
        yield opened


def proves(checkpoint: dict[str, Any], records: dict[int, dict[str, Any]]) -> bool:
    """The consumer's check: chain_next from chain_before over the range lands on chain."""
    chain = bytes.fromhex(checkpoint["chain_before"])
    for seq in range(checkpoint["first_seq"], checkpoint["last_seq"] + 1):
        envelope = records[seq]["envelope"]
        chain = chain_next(
            chain,
            base64.b64decode(envelope["aad"]),
            base64.b64decode(envelope["nonce"]),
            base64.b64decode(envelope["ciphertext"]),
        )
    return bool(chain.hex() == checkpoint["chain"])


def test_checkpoints_are_delivered_with_exactly_the_documented_fields(
    recorder: Recorder,
    journal: Journal,
    make_engine: EngineFactory,
    aws_endpoint: str,
    route: Route,
    sqs_client: Any,
) -> None:
    fill(recorder, RECORDS)
    engine = make_engine(aws_endpoint)
    runner = threading.Thread(target=engine.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + WAIT_SECONDS
    try:  # the engine's timer cuts 11..12 a second after it started, then sends it
        while time.monotonic() < deadline:
            status = journal.checkpoint_status()
            if (status.last_seq, status.pending) == (RECORDS, 0):
                break
            time.sleep(0.05)
    finally:
        engine.stop()
        runner.join(timeout=10)
    assert journal.checkpoint_status().last_seq == RECORDS
    assert journal.pending_side_events(10) == []  # all accepted by EventBridge

    events = receive_all(sqs_client, route.queue_url, RECORDS + 3)
    records = {e["detail"]["seq"]: e["detail"] for e in record_events(events)}
    checkpoints = sorted(
        (e for e in events if e["detail-type"] == CHECKPOINT_DETAIL_TYPE),
        key=lambda e: e["detail"]["first_seq"],
    )
    assert sorted(records) == list(range(1, RECORDS + 1))
    ranges = [(c["detail"]["first_seq"], c["detail"]["last_seq"]) for c in checkpoints]
    assert ranges == [(1, 5), (6, 10), (11, 12)]
    previous = "0" * 64
    for event in checkpoints:
        detail = event["detail"]
        assert event["source"] == SOURCE
        assert set(detail) == CHECKPOINT_FIELDS
        assert detail["schema"] == CHECKPOINT_SCHEMA
        assert (detail["store_id"], detail["terminal_id"]) == (STORE_ID, TERMINAL_ID)
        assert detail["journal_id"] == journal.journal_id
        assert detail["count"] == detail["last_seq"] - detail["first_seq"] + 1
        assert detail["chain_before"] == previous
        assert detail["chain"] == records[detail["last_seq"]]["chain"]
        assert detail["created_at"].endswith("Z")
        assert proves(detail, records)
        previous = detail["chain"]


BACKLOG_RECORDS = EVERY * 60  # 60 checkpoints, six requests of ten: an outage, in small
SLOW_POLL_SECONDS = 30.0  # paced by it, the six requests would need at least 150 s
BACKLOG_DRAIN_TIMEOUT_SECONDS = 60.0  # paced by the answers, 5 s here, more on a loaded CI


def test_a_backlog_of_checkpoints_goes_out_one_request_per_answer(
    recorder: Recorder, journal: Journal, make_engine: EngineFactory, aws_endpoint: str
) -> None:
    """After an outage a terminal holds one checkpoint per 100 records captured meanwhile.
    The side lane sends them back to back, and the driver wakes on the side lane's answer,
    not on its idle poll: paced by either, 2,000 checkpoints held a 5,000-record drain for
    99 s in bench/cost_growth.py."""
    fill(recorder, BACKLOG_RECORDS)
    assert len(journal.pending_side_events(100)) == BACKLOG_RECORDS // EVERY
    engine = make_engine(aws_endpoint, idle_poll_seconds=SLOW_POLL_SECONDS)
    report = engine.drain(timeout=BACKLOG_DRAIN_TIMEOUT_SECONDS)
    assert report.completed, report
    assert journal.pending_side_events(100) == []
    assert journal.summary().pending == 0


def test_a_side_event_cut_while_a_request_is_in_flight_is_not_left_behind(
    recorder: Recorder, journal: Journal, aws_endpoint: str, route: Route
) -> None:
    """An alarm or checkpoint raised while the side lane's request is out must keep the lane
    busy when that request is answered: a drain that found it idle then returned with the
    alarm still in the journal (seen as `posd sync flush` leaving a tampered record's alarm
    unsent)."""
    fill(recorder, EVERY)  # checkpoint 1..5
    clients = clients_for(
        replace(FAST, event_bus_name=route.bus_name),
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        endpoint_url=aws_endpoint,
        session=emulator_session(),
    )
    origin = SideOrigin(SOURCE, route.bus_name, STORE_ID, TERMINAL_ID, journal.journal_id)
    sender = SideEventSender(journal, clients, origin, 5.0, FullJitterBackoff(0.02, 0.2))
    try:
        assert sender.send(0.0) == 1
        for index in range(EVERY):  # checkpoint 6..10, cut while 1..5 is in flight
            meta = {"amount": 100, "currency": "EUR"}
            recorder.record("payment.card", meta, secret_of(index), client_ref=f"more-{index}")
        sender.raised()
        assert sender.collect(0.0, wait=True) == 1
        assert not sender.idle and sender.due(0.0)
        assert sender.send(0.0) == 1
        assert sender.collect(0.0, wait=True) == 1
        assert journal.pending_side_events(10) == []
    finally:
        sender.close(0.0)
