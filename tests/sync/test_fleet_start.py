"""The engine reads the cloud's published fair rate when it starts and again when the link
comes back from an outage (issue 25), and a published rate it cannot read does not stop
delivery. Real engine, real journal, boto3 against the local AWS through the fault proxy."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from posd.assembly import clients_for
from posd.journal import Journal
from posd.recorder import Recorder
from sync.engine import SyncEngine
from sync.settings import SyncSettings
from tests.sync.conftest import (
    FAST,
    STORE_ID,
    TERMINAL_ID,
    WAIT_SECONDS,
    Route,
    emulator_session,
    event_ids,
    fill,
    receive_all,
    wait_for,
)
from tests.sync.faultproxy import FaultProxy

PUBLISHED = 1_000.0  # entries/s: fast enough not to slow the test
SLOW_RATE = 10.0  # entries/s: a backlog of REREAD_BACKLOG takes seconds at it
REREAD_BACKLOG = 60
REREAD_SECONDS = 0.2


def _engine(
    journal: Journal, route: Route, endpoint: str, fair_rate: Any, settings: SyncSettings = FAST
) -> SyncEngine:
    settings = replace(settings, event_bus_name=route.bus_name)
    clients = clients_for(
        settings,
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        endpoint_url=endpoint,
        session=emulator_session(),
    )
    return SyncEngine(
        journal,
        clients,
        settings,
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        fair_rate=fair_rate,
    )


def test_the_published_rate_is_read_at_start_and_when_the_link_is_back(
    recorder: Recorder, journal: Journal, proxy: FaultProxy, route: Route, sqs_client: Any
) -> None:
    reads: list[float] = []

    def fair_rate() -> float:
        reads.append(time.monotonic())
        return PUBLISHED

    ids = fill(recorder, 20)
    proxy.down()
    with _engine(journal, route, proxy.url, fair_rate) as engine:
        runner = threading.Thread(target=engine.run, daemon=True)
        runner.start()
        try:
            wait_for(lambda: engine.status().state == "offline", "offline")
            assert len(reads) == 1  # at the start, not on every request
            proxy.up()
            wait_for(lambda: journal.summary().pending == 0, "backlog drained")
            assert len(reads) == 2  # and once more when the link came back
        finally:
            engine.stop()
            runner.join(timeout=10)
    assert sorted(event_ids(receive_all(sqs_client, route.queue_url, 20))) == sorted(ids)


def test_an_unreadable_published_rate_does_not_stop_delivery(
    recorder: Recorder, journal: Journal, proxy: FaultProxy, route: Route, sqs_client: Any
) -> None:
    def fair_rate() -> float:
        raise OSError("parameter store unreachable")

    ids = fill(recorder, 5)
    with _engine(journal, route, proxy.url, fair_rate) as engine:
        report = engine.drain(timeout=WAIT_SECONDS)
    assert report.completed
    assert sorted(event_ids(receive_all(sqs_client, route.queue_url, 5))) == sorted(ids)


def test_a_draining_lane_rereads_the_published_rate_without_waiting_for_it(
    recorder: Recorder, journal: Journal, proxy: FaultProxy, route: Route, sqs_client: Any
) -> None:
    # The first read (at start) gives a slow rate; the re-reads while draining hang until the
    # test lets them go, and delivery goes on meanwhile; once let go, the lane takes the
    # higher rate, and an idle lane reads no more.
    reads: list[float] = []
    answer = threading.Event()

    def fair_rate() -> float:
        reads.append(time.monotonic())
        if len(reads) == 1:
            return SLOW_RATE
        answer.wait(WAIT_SECONDS)
        return PUBLISHED

    ids = fill(recorder, REREAD_BACKLOG)
    settings = replace(FAST, fair_rate_reread_seconds=REREAD_SECONDS)
    with _engine(journal, route, proxy.url, fair_rate, settings) as engine:
        runner = threading.Thread(target=engine.run, daemon=True)
        runner.start()
        try:
            wait_for(lambda: len(reads) == 2, "a re-read while draining")
            pending = journal.summary().pending
            wait_for(lambda: journal.summary().pending < pending, "delivery during the read")
            answer.set()
            wait_for(lambda: journal.summary().pending == 0, "backlog drained")
            time.sleep(3 * REREAD_SECONDS)
            drained_reads = len(reads)
            time.sleep(3 * REREAD_SECONDS)
            assert len(reads) == drained_reads  # idle: not read again
        finally:
            answer.set()
            engine.stop()
            runner.join(timeout=10)
    # every record arrived (a resend after a slow answer may arrive twice: the consumer dedupes)
    received = event_ids(receive_all(sqs_client, route.queue_url, REREAD_BACKLOG))
    assert sorted(set(received)) == sorted(ids)
