"""Offline then online: the endpoint refuses connections for a while, then comes back."""

from __future__ import annotations

import threading
import time
from typing import Any

from posd.journal import Journal
from posd.recorder import Recorder
from tests.sync.conftest import (
    EngineFactory,
    Route,
    event_ids,
    fill,
    receive_all,
    wait_for,
)
from tests.sync.faultproxy import FaultProxy, http_error


def test_goes_offline_probes_and_recovers_by_itself(
    recorder: Recorder,
    journal: Journal,
    proxy: FaultProxy,
    make_engine: EngineFactory,
    route: Route,
    sqs_client: Any,
) -> None:
    engine = make_engine(proxy.url)
    proxy.down()
    ids = fill(recorder, 25)
    runner = threading.Thread(target=engine.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: engine.status().state == "offline", "offline")
        offline = engine.status()
        assert offline.offline_since is not None
        assert offline.last_error is not None
        assert "transport" in offline.last_error
        assert offline.in_flight_limit == 1  # one probe at a time
        time.sleep(0.5)  # stay down a while: probes fail, nothing is delivered or lost
        assert journal.summary().pending == 25

        proxy.up()
        wait_for(lambda: engine.status().state == "online", "online")
        wait_for(lambda: journal.summary().pending == 0, "backlog drained")
    finally:
        engine.stop()
        runner.join(timeout=10)
    assert not runner.is_alive()
    status = engine.status()
    assert status.offline_since is None
    assert status.last_success is not None
    assert sorted(event_ids(receive_all(sqs_client, route.queue_url, 25))) == sorted(ids)


def test_probes_are_spaced_not_hammered(
    recorder: Recorder, proxy: FaultProxy, make_engine: EngineFactory
) -> None:
    fill(recorder, 5)
    proxy.default = http_error(503, "ServiceUnavailable")
    engine = make_engine(proxy.url, probe_min_seconds=0.2, probe_max_seconds=0.4)

    report = engine.drain(timeout=2.0)

    assert not report.completed
    assert report.state == "offline"
    assert report.pending == 5
    # 2 failures to go offline, then at most one probe per 0.2 s over ~2 s.
    assert 3 <= len(proxy.seen) <= 2 + 2.0 / 0.2 + 1
