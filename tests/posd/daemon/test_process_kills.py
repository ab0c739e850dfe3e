"""Each of the lane's two daemons SIGKILLed alone, at random moments, while the register pays.

Capture (`posd run`) and delivery (`posd sync run`) share only the journal: killing delivery
mid-drain must cost capture nothing (every payment answered 201), killing capture must not
stop delivery of what was journaled, and after the restarts every record reaches the queue,
each event_id at least once, none extra, the journal verifying. The register is the chaos
soak's (the same `client_ref` again until an answer comes).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.backend import QueueRoute, route_bus_to_queue
from demo.localaws.emulator import LocalAws
from drivers.card.simulator import CardReaderSimulator
from posd.journal import Journal
from tests.chaos import checks
from tests.chaos.register import CURRENCIES, HTTP_TIMEOUT_S, Register
from tests.posd.daemon.conftest import SOURCE, daemon_factory
from tests.posd.daemon.harness import Daemon, wait_for
from tests.sync.conftest import receive_all
from tests.sync.faultproxy import PASS, FaultProxy, delay
from wire.events import SIDE_DETAIL_TYPES

DELIVERY_KILL_ROUNDS = 6
CAPTURE_KILL_ROUNDS = 3
DRAINING_S = (0.0, 0.6)  # after delivery's READY: it is draining what piled up meanwhile
SLOW_BUS_S = 0.3  # each answer of the bus, while delivery is killed again and again
DOWN_S = (0.5, 1.5)  # a killed daemon stays down this long
PAYING_S = (0.5, 1.5)  # payments between two capture kills
BACKLOG_S = 1.5  # the link down before a capture kill: records journaled, not delivered
FLUSH_TIMEOUT_S = 60
DELIVERED_TIMEOUT_S = 30.0
NOT_RUNNING_TIMEOUT_S = 10.0  # delivery's status file goes stale after about 3 s
PAYMENTS_WHILE_STOPPED = 5


@pytest.fixture
def route(local_aws: LocalAws) -> QueueRoute:
    """A queue of the test's own: what it receives is this lane's alone."""
    return route_bus_to_queue(
        local_aws.client("events"), local_aws.client("sqs"), f"k-{uuid.uuid4().hex[:10]}", SOURCE
    )


@pytest.fixture
def lane(
    tmp_path: Path, own_reader: CardReaderSimulator, own_proxy: FaultProxy, route: QueueRoute
) -> Iterator[Daemon]:
    """Both daemons on a state dir of the test's own (started: capture, then delivery)."""
    make, started = daemon_factory(tmp_path, own_reader, own_proxy, route)
    daemon = make(payments={"currencies": list(CURRENCIES)})
    yield daemon
    for each in started:
        each.kill()


@pytest.fixture
def rng() -> random.Random:
    seed = int.from_bytes(os.urandom(4), "big")
    print(f"seed {seed}")
    return random.Random(seed)


@pytest.fixture
def register(lane: Daemon, rng: random.Random) -> Iterator[Register]:
    till = Register(lane.socket, rng.randrange(2**31))
    till.start()
    yield till
    till.stop()
    till.join(HTTP_TIMEOUT_S * 2)


def stop_paying(register: Register) -> None:
    register.stop()
    register.join(HTTP_TIMEOUT_S * 2)
    assert not register.is_alive()


def pending(daemon: Daemon) -> int:
    return int(daemon.call("GET", "/v1/status")[1]["pending"]["count"])


def drain_and_stop(daemon: Daemon) -> None:
    """Flush the backlog through the delivery daemon, then SIGTERM both: exit codes 0."""
    status, flushed = daemon.call("POST", "/v1/sync/flush", {"timeout_s": FLUSH_TIMEOUT_S})
    assert status == 200 and flushed["completed"] and flushed["pending"] == 0, flushed
    assert daemon.stop() == 0, daemon.output()
    assert daemon.delivery_code == 0, daemon.output()


def assert_nothing_lost_or_doubled(
    daemon: Daemon, register: Register, sqs: Any, queue_url: str, received: list[dict[str, Any]]
) -> None:
    """The promise across the kills, checked as the backend would (dedup by event_id): every
    record journaled received, every payment answered 201 journaled, no record the journal
    does not hold, no payment journaled twice (a resent `client_ref` is one record), the
    journal verifying."""
    state_dir = daemon.dir / "state"
    with Journal.open(state_dir) as journal:
        report = journal.verify()
    assert report.ok, report.problems
    rows = checks.journal_rows(state_dir / "journal.db")
    journal_ids = {row.event_id for row in rows}
    receive_until(sqs, queue_url, journal_ids, received)
    records = [e for e in received if e.get("detail-type") not in SIDE_DETAIL_TYPES]
    assert journal_ids - ids(records) == set(), "lost"
    assert ids(records) - journal_ids == set(), "extra"
    acknowledged = {answer["event_id"] for answer in register.log.acknowledged.values()}
    assert acknowledged <= journal_ids
    assert checks.check_idempotency(rows, register.log) == []
    print(
        f"{len(register.log.acknowledged)} payments answered 201, {len(rows)} records,"
        f" {len(records)} copies received ({len(records) - len(journal_ids)} resends)"
    )


def receive_until(
    sqs: Any, queue_url: str, wanted: set[str], received: list[dict[str, Any]]
) -> None:
    """Read the queue into `received` until every event_id in `wanted` is there (bounded),
    then a little longer for stragglers."""
    deadline = time.monotonic() + DELIVERED_TIMEOUT_S
    while not wanted <= ids(received) and time.monotonic() < deadline:
        received += receive_all(sqs, queue_url, len(wanted - ids(received)))
    received += receive_all(sqs, queue_url, 0)


def ids(received: list[dict[str, Any]]) -> set[str]:
    return {e["detail"]["event_id"] for e in received}


def test_delivery_killed_mid_drain_again_and_again_costs_capture_nothing(
    lane: Daemon,
    register: Register,
    rng: random.Random,
    own_proxy: FaultProxy,
    local_aws: LocalAws,
    route: QueueRoute,
) -> None:
    own_proxy.default = delay(SLOW_BUS_S)  # each drain takes a while: the kills land in one
    mid_drain = 0
    for _ in range(DELIVERY_KILL_ROUNDS):
        time.sleep(rng.uniform(*DRAINING_S))
        mid_drain += pending(lane) > 0
        lane.kill_delivery()
        time.sleep(rng.uniform(*DOWN_S))  # payments pile up
        lane.start_delivery()
    time.sleep(rng.uniform(*DRAINING_S))
    own_proxy.default = PASS
    stop_paying(register)
    drain_and_stop(lane)

    log = register.log
    assert log.payments > DELIVERY_KILL_ROUNDS * 2
    assert log.refusals == {} and log.resends == 0  # capture never noticed
    assert len(log.acknowledged) == log.payments
    print(f"delivery killed {DELIVERY_KILL_ROUNDS} times, {mid_drain} with a backlog")
    assert mid_drain > DELIVERY_KILL_ROUNDS // 2, f"killed with a backlog only {mid_drain} times"
    assert_nothing_lost_or_doubled(lane, register, local_aws.client("sqs"), route.queue_url, [])


def test_delivery_goes_on_while_capture_is_killed_and_capture_pays_again_after(
    lane: Daemon,
    register: Register,
    rng: random.Random,
    own_proxy: FaultProxy,
    local_aws: LocalAws,
    route: QueueRoute,
) -> None:
    sqs = local_aws.client("sqs")
    received: list[dict[str, Any]] = []
    for _ in range(CAPTURE_KILL_ROUNDS):
        own_proxy.down()  # a backlog: journaled, not yet delivered
        time.sleep(BACKLOG_S + rng.uniform(*PAYING_S))
        lane.kill_capture()
        journaled = {row.event_id for row in checks.journal_rows(lane.dir / "state/journal.db")}
        own_proxy.up()
        receive_until(sqs, route.queue_url, journaled, received)
        assert journaled <= ids(received), "delivery stopped with capture"
        assert lane.delivery.running
        time.sleep(rng.uniform(*DOWN_S))
        lane.start(delivery=False)
        answered = len(register.log.acknowledged)
        wait_for(lambda: len(register.log.acknowledged) > answered, DELIVERED_TIMEOUT_S)
    stop_paying(register)
    drain_and_stop(lane)

    log = register.log
    assert log.resends > 0  # the kills were seen by the register
    assert log.refusals == {}
    assert len(log.acknowledged) == log.payments
    assert_nothing_lost_or_doubled(lane, register, sqs, route.queue_url, received)


def test_capture_pays_while_delivery_is_stopped_and_says_so(
    lane: Daemon, local_aws: LocalAws, route: QueueRoute
) -> None:
    lane.delivery.terminate()
    assert lane.delivery.wait() == 0

    def delivery_not_running() -> bool:
        status = lane.call("GET", "/v1/status")[1]
        error = status["link"]["last_error"]
        return not status["delivery"]["running"] and error is not None and "not running" in error

    wait_for(delivery_not_running, NOT_RUNNING_TIMEOUT_S, interval=0.2)
    answers = [lane.pay(f"stopped-{index}") for index in range(PAYMENTS_WHILE_STOPPED)]
    assert [status for status, _ in answers] == [201] * PAYMENTS_WHILE_STOPPED
    assert pending(lane) >= PAYMENTS_WHILE_STOPPED
    assert delivery_not_running()

    lane.start_delivery()
    drain_and_stop(lane)
    wanted = {answer["event_id"] for _, answer in answers}
    received: list[dict[str, Any]] = []
    receive_until(local_aws.client("sqs"), route.queue_url, wanted, received)
    assert wanted <= ids(received)
