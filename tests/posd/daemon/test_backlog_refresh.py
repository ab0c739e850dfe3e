"""The capture daemon keeps the backlog's free upper bound fresh while an offline limit needs
it: delivery (which took a summary every second) is another process now, and without a fresh
bound every payment would scan the backlog itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.devconfig import DevConfig, simulated_card_reader, simulated_palm
from posd.config import load_config
from posd.daemon.compose import DaemonParts, compose
from posd.daemon.runtime import Daemon
from posd.journal.store import BACKLOG_BOUND_MAX_AGE_SECONDS

LIMITS = {"max_pending_count": 1000}
SLACK_S = 0.2


def lane(directory: Path, offline: dict[str, int]) -> Path:
    return DevConfig(
        store_id="store-bound",
        terminal_id="lane-bound",
        api={"socket": "api.sock", "socket_group": ""},
        aws={"region": "us-east-1", "events_endpoint_url": "http://127.0.0.1:9"},
        sync={"event_bus_name": "bus", "source": "posd.bound"},
        offline=offline,
        devices={
            "card_reader": simulated_card_reader(),
            "palm_scanner": simulated_palm({"s": "tok-bound-0001"}, present="s", scan_time_s=0.0),
        },
    ).write(directory / "posd.toml")


@pytest.fixture
def parts(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DaemonParts]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            patch.setenv(name, "testing")
        composed = compose(load_config(lane(tmp_path, request.param)))
        yield composed
        Daemon(composed).stop()


@pytest.mark.parametrize("parts", [LIMITS], indirect=True)
def test_a_tick_refreshes_the_backlog_bound_while_a_limit_needs_it(parts: DaemonParts) -> None:
    time.sleep(BACKLOG_BOUND_MAX_AGE_SECONDS + SLACK_S)  # the start-up summary is too old now
    assert parts.journal.backlog_bound() is None
    Daemon(parts).refresh_backlog()
    bound = parts.journal.backlog_bound()
    assert bound is not None and bound.pending == 0


@pytest.mark.parametrize("parts", [{}], indirect=True)
def test_without_a_backlog_limit_no_summary_is_taken(parts: DaemonParts) -> None:
    time.sleep(BACKLOG_BOUND_MAX_AGE_SECONDS + SLACK_S)
    Daemon(parts).refresh_backlog()
    assert parts.journal.backlog_bound() is None
