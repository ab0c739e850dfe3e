"""A lane paced at its share sleeps until its rate lets the next request go, asking its rate
limiter again by halves (`sync.pacing.lane.rate_wait`), not once every idle poll (issue 25: a
thousand real engines polling four times a second while paced took half of the fleet bench's
two cores, and their stalls, not the pacing, made its throttling). Real engine, real journal,
boto3 against the local AWS."""

from __future__ import annotations

import math

from posd.recorder import Recorder
from sync.pacing.lane import RATE_WAIT_MAX_SECONDS, rate_wait
from sync.status import DrainProgress
from tests.sync.conftest import FAST, WAIT_SECONDS, EngineFactory, fill

LANE_RATE = 5.0  # entries/s: a 10-entry request every 2 s
BACKLOG = 30  # three requests
ENTRIES_PER_REQUEST = 10
LATENESS_SLACK_SECONDS = 1.0
ROUNDS_SLACK = 2


def test_a_paced_lane_asks_its_limiter_by_halves_not_every_poll(
    recorder: Recorder, aws_endpoint: str, make_engine: EngineFactory
) -> None:
    fill(recorder, BACKLOG)
    engine = make_engine(
        aws_endpoint,
        lane_rate_per_second=LANE_RATE,
        max_entries_per_request=ENTRIES_PER_REQUEST,
    )
    rounds: list[DrainProgress] = []
    report = engine.drain(timeout=WAIT_SECONDS, progress=rounds.append)

    assert report.completed and report.delivered == BACKLOG
    requests = BACKLOG // ENTRIES_PER_REQUEST
    per_request = ENTRIES_PER_REQUEST / LANE_RATE
    # Not late: the backlog at the lane's rate (its first request may go at once).
    assert report.elapsed_seconds < BACKLOG / LANE_RATE + LATENESS_SLACK_SECONDS
    # Polling every idle poll is per_request / idle_poll = 100 rounds a request (249 in all
    # were counted); by halves, log2 of that and a few for the answer and the send: 29-33 on
    # this VM, quiet or loaded. Twice that leaves room for a loaded machine's extra rounds
    # and is still a quarter of polling.
    halvings = math.ceil(math.log2(per_request / FAST.idle_poll_seconds))
    assert len(rounds) <= ROUNDS_SLACK * requests * (halvings + 4), len(rounds)


def test_rate_wait_halves_down_to_the_poll_and_is_bounded() -> None:
    poll = 0.25
    assert rate_wait(0.1, poll) == 0.1  # under a poll: all of it
    assert rate_wait(0.4, poll) == poll  # half would be under a poll
    assert rate_wait(4.0, poll) == 2.0
    assert rate_wait(1_000.0, poll) == RATE_WAIT_MAX_SECONDS
    assert rate_wait(0.0, poll) == 0.0
    assert rate_wait(math.inf, poll) == poll  # the slow start's "until an answer"
