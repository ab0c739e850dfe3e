"""The delivery daemon's status file: what it writes is what capture and the CLI read, and a
file nobody rewrites (a killed daemon) or the last word of a clean stop means "not running"."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from posd.syncd.status_file import (
    NOT_RUNNING,
    STALE_AFTER_SECONDS,
    DeliveryPeer,
    DeliveryReport,
    presence_in,
    read_report,
    status_path,
    write_report,
)
from sync.acknowledgement import Acknowledgement
from sync.status import SyncStatus


def a_status(pending: int = 3, state: str = "online") -> SyncStatus:
    return SyncStatus(
        state=state,
        offline_since=None,
        last_success=1_800_000_000.5,
        last_error=None,
        pending=pending,
        quarantined=1,
        oldest_pending_age_seconds=2.5,
        in_flight=2,
        in_flight_limit=4,
        delivered_since_start=10,
        quarantined_since_start=1,
        read_timeout_seconds=1.0,
        entries_per_request=10,
        slow_endpoint=False,
        acknowledged=Acknowledgement("j-1", 7, 1_800_000_000.0, None),
    )


@given(
    pending=st.integers(min_value=0, max_value=10**9),
    state=st.sampled_from(["unknown", "online", "offline", "misconfigured"]),
    stopped=st.booleans(),
)
def test_a_report_reads_back_as_written(pending: int, state: str, stopped: bool) -> None:
    report = DeliveryReport(4321, 1_800_000_000.0, time.time(), a_status(pending, state), stopped)
    with tempfile.TemporaryDirectory() as directory:
        write_report(Path(directory), report)
        assert read_report(Path(directory)) == report


def test_a_fresh_report_is_the_status_and_a_stale_one_is_not_running(tmp_path: Path) -> None:
    status = a_status()
    write_report(tmp_path, DeliveryReport(4321, 1.0, time.time(), status))
    assert presence_in(tmp_path).running and presence_in(tmp_path).pid == 4321
    assert DeliveryPeer(tmp_path).status() == status

    # Killed: nobody rewrites the file; once it is older than the staleness bound, it says
    # "not running", keeping the counts it last knew.
    write_report(tmp_path, DeliveryReport(4321, 1.0, time.time() - STALE_AFTER_SECONDS - 1, status))
    assert not presence_in(tmp_path).running
    seen = DeliveryPeer(tmp_path).status()
    assert seen.state == "unknown" and seen.last_error == NOT_RUNNING
    assert seen.pending == status.pending and seen.in_flight == 0


def test_the_last_word_of_a_clean_stop_is_not_running_at_once(tmp_path: Path) -> None:
    write_report(tmp_path, DeliveryReport(4321, 1.0, time.time(), a_status(), stopped=True))
    assert not presence_in(tmp_path).running
    assert DeliveryPeer(tmp_path).status().last_error == NOT_RUNNING


def test_no_file_or_a_garbled_one_is_not_running(tmp_path: Path) -> None:
    assert presence_in(tmp_path).running is False
    assert DeliveryPeer(tmp_path).status().last_error == NOT_RUNNING
    status_path(tmp_path).write_text('{"pid": "x"')
    assert read_report(tmp_path) is None
    assert DeliveryPeer(tmp_path).status().last_error == NOT_RUNNING
