"""SIGKILL a draining process at random moments, restart, drain: every event_id reaches the
queue at least once and the set received is exactly the journal's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from posd.journal import Journal
from posd.recorder import Recorder
from tests.repo import REPO_ROOT
from tests.sync.conftest import Route, event_ids, fill, receive_all, record_events
from tests.sync.faultproxy import FaultProxy, delay

RECORDS = 200
KILLS = 3
REQUEST_DELAY_SECONDS = 0.1  # slows the drain (~1 s) so kills land mid-way
POLL_SECONDS = 0.005
CHILD_TIMEOUT_SECONDS = 60.0
ROOT = REPO_ROOT


def _spawn(state_dir: Path, endpoint: str, bus: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sync.drain_child", str(state_dir), endpoint, bus],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_sigkill_mid_drain_then_restart(
    recorder: Recorder,
    journal: Journal,
    proxy: FaultProxy,
    route: Route,
    sqs_client: Any,
) -> None:
    ids = fill(recorder, RECORDS)
    received = kill_and_restart(journal, proxy, route.bus_name, sqs_client, route.queue_url)
    journal_ids = {record.event_id for record in journal.records()}
    assert journal_ids == set(ids)
    assert set(received) == journal_ids


def kill_and_restart(
    journal: Journal, proxy: FaultProxy, bus: str, sqs_client: Any, queue_url: str
) -> list[str]:
    """Drain in a child through `proxy`, SIGKILL it KILLS times at random points, drain to the
    end; the event_ids of records the queue received (duplicates kept). `bus`: a v1 name or a
    v2 ARN."""
    state_dir = journal.path.parent
    proxy.default = delay(REQUEST_DELAY_SECONDS)
    rng = random.Random()
    # Kill once the drain is past a random point, plus a random sliver of time, so the
    # signal lands anywhere: mid-request, mid-commit, between a response and its marking.
    targets = sorted(rng.sample(range(5, RECORDS - 50), KILLS))
    for target in targets:
        child = _spawn(state_dir, proxy.url, bus)
        deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
        while journal.summary().delivered < target and time.monotonic() < deadline:
            assert child.poll() is None, child.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            time.sleep(POLL_SECONDS)
        time.sleep(rng.uniform(0, REQUEST_DELAY_SECONDS))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
    assert journal.summary().pending > 0  # the last kill really interrupted a drain

    final = _spawn(state_dir, proxy.url, bus)
    _, stderr = final.communicate(timeout=CHILD_TIMEOUT_SECONDS)
    assert final.returncode == 0, stderr.decode()[-2000:]

    summary = journal.summary()
    assert (summary.pending, summary.quarantined, summary.delivered) == (0, 0, RECORDS)
    checkpoints = RECORDS // journal.settings.checkpoint_every_records  # sent beside records
    return event_ids(record_events(receive_all(sqs_client, queue_url, RECORDS + checkpoints)))
