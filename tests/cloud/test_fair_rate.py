"""The fair rate the consumer publishes (`cloud.fair_rate`): the chain's share of the PutEvents
quota over the lanes that share it (heard within the window, less those seen to have drained a
backlog: their watermark items, written by the consumer's own `Watermarks`, in moto's
DynamoDB), never below the floor, put in moto's SSM over HTTP only when it changes; on the
Lambda's schedule and from its SQS batches at most every 15 s, configured by its
environment."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cloud import handler
from cloud.errors import ConsumerConfigError
from cloud.fair_rate import (
    FAIR_RATE_ENV,
    REPUBLISH_SECONDS,
    FairRatePublisher,
    FairRateSettings,
    active_lanes,
    fleet_rate,
    publisher_from_env,
)
from cloud.store import Store
from cloud.tables import TableNames, create_tables
from cloud.watermarks import Watermarks
from demo.localaws.emulator import LocalAws
from tests.cloud.conftest import Rig
from wire.envelope import GENESIS_CHAIN
from wire.fair_rate import BEHIND_SECONDS, DRAINED_AFTER_SECONDS, rate_of

DAY = 86400.0
NOW = 1_800_000_000.0
QUOTA = 300.0
SHARE = 0.5
CHECKPOINT_LAST_SEQ = 100


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(local_aws: LocalAws) -> Store:
    tables = TableNames.prefixed(f"fair-{uuid.uuid4().hex[:8]}")
    dynamodb = local_aws.client("dynamodb")
    create_tables(dynamodb, tables)
    return Store(dynamodb, tables)


@pytest.fixture
def ssm(local_aws: LocalAws) -> Any:
    return local_aws.client("ssm")


@pytest.fixture
def parameter() -> str:
    return f"/posd/fair-{uuid.uuid4().hex[:8]}/fair-rate"


def settings(parameter: str, floor: float = 0.1) -> FairRateSettings:
    return FairRateSettings(parameter, quota=QUOTA, share=SHARE, floor=floor, window_seconds=DAY)


def delivered(
    store: Store,
    lane: str,
    at: float,
    *,
    journals: int = 1,
    made: float | None = None,
    last_seq: int = CHECKPOINT_LAST_SEQ,
) -> None:
    """`lane` delivered a checkpoint ending at `last_seq` at `at` (as the consumer notes one),
    made by the terminal at `made` (default: as it was sent), on each journal."""
    watermarks = Watermarks(store)
    store_id, terminal_id = lane.split("/")
    for n in range(journals):
        journal_id = journal_of(terminal_id, n)
        watermarks.create(lane, journal_id, store_id, terminal_id, at - 60)
        watermarks.note_checkpoint(lane, journal_id, at, at if made is None else made, last_seq)


def journal_of(terminal_id: str, n: int = 0) -> str:
    return f"{terminal_id}-journal-{n}"


def published(ssm: Any, parameter: str) -> tuple[str, int]:
    answer = ssm.get_parameter(Name=parameter)["Parameter"]
    return answer["Value"], int(answer["Version"])


def test_the_share_goes_to_the_lanes_that_delivered_within_the_window(
    store: Store, ssm: Any, parameter: str
) -> None:
    for n in range(3):
        delivered(store, f"store-1/lane-{n}", NOW - 3600, journals=2)  # an hour ago: counted
    delivered(store, "store-2/lane-0", NOW - 2 * DAY)  # two days ago: not
    publisher = FairRatePublisher(ssm, store, settings(parameter), clock=Clock())
    assert publisher.publish() == "50"  # 300 x 0.5 / 3 lanes (6 journals)
    assert published(ssm, parameter) == ("50", 1)


def test_the_lanes_that_drained_a_backlog_leave_their_share_to_those_still_draining(
    store: Store, ssm: Any, parameter: str
) -> None:
    backlog = 2 * BEHIND_SECONDS  # their checkpoints were made this long before they came
    drained_at = NOW - 2 * DRAINED_AFTER_SECONDS
    for n in range(3):
        delivered(store, f"store-1/drained-{n}", drained_at, made=drained_at - backlog)
    delivered(store, "store-1/draining", NOW - 5, made=NOW - 5 - backlog)
    delivered(store, "store-1/caught-up", drained_at)  # quiet in steady state: may be cut off
    publisher = FairRatePublisher(ssm, store, settings(parameter), clock=Clock())
    assert publisher.publish() == "75"  # 300 x 0.5 / 2 lanes (not 5)


def test_a_lane_whose_watermark_reached_its_latest_checkpoint_from_a_backlog_has_drained(
    store: Store,
) -> None:
    # Both sent their backlog's checkpoints (through seq 100) first, as the side lane does;
    # one has since delivered every record they cover, a second ago, the other half of them.
    made = NOW - 10 - 2 * BEHIND_SECONDS
    watermarks = Watermarks(store)
    for terminal, proven in (("caught-up", CHECKPOINT_LAST_SEQ), ("draining", 50)):
        lane = f"store-1/{terminal}"
        delivered(store, lane, NOW - 10, made=made)
        read = (0, GENESIS_CHAIN.hex())
        assert watermarks.advance(lane, journal_of(terminal), read, (proven, "ab" * 32), NOW - 1)
    assert active_lanes(store, NOW, DAY) == 1  # at once: no silence waited for


def test_a_checkpoint_that_came_live_counts_the_lane_again(store: Store) -> None:
    long_ago = NOW - 2 * DRAINED_AFTER_SECONDS
    delivered(store, "store-1/lane-0", long_ago, made=long_ago - 2 * BEHIND_SECONDS)
    assert active_lanes(store, NOW, DAY) == 0
    delivered(store, "store-1/lane-0", NOW - 1)  # a payment's checkpoint, sent as it was made
    assert active_lanes(store, NOW, DAY) == 1


def test_a_new_quota_is_published_by_the_first_instance_that_has_it(
    store: Store, ssm: Any, parameter: str
) -> None:
    delivered(store, "store-1/lane-0", NOW)
    clock = Clock()
    FairRatePublisher(ssm, store, settings(parameter), clock=clock).publish()
    cut = FairRateSettings(parameter, quota=QUOTA / 2, share=SHARE, window_seconds=DAY)
    assert FairRatePublisher(ssm, store, cut, clock=clock).publish_if_due() == "75"
    assert published(ssm, parameter) == ("75", 2)


def test_batches_republish_at_most_every_so_often(store: Store, ssm: Any, parameter: str) -> None:
    clock = Clock()
    publisher = FairRatePublisher(ssm, store, settings(parameter), clock=clock)
    assert publisher.publish_if_due() == "150"
    delivered(store, "store-1/lane-0", NOW)
    delivered(store, "store-1/lane-1", NOW)
    clock.now += REPUBLISH_SECONDS / 2
    assert publisher.publish_if_due() is None
    clock.now += REPUBLISH_SECONDS / 2
    assert publisher.publish_if_due() == "75"


def test_an_unchanged_rate_is_not_written_again(store: Store, ssm: Any, parameter: str) -> None:
    delivered(store, "store-1/lane-0", NOW)
    publisher = FairRatePublisher(ssm, store, settings(parameter), clock=Clock())
    publisher.publish()
    publisher.publish()
    assert published(ssm, parameter) == ("150", 1)
    delivered(store, "store-1/lane-1", NOW)
    publisher.publish()
    assert published(ssm, parameter) == ("75", 2)


def test_never_below_the_floor_and_always_a_rate_lanes_accept() -> None:
    chosen = settings("/posd/x/fair-rate", floor=0.25)
    assert fleet_rate(chosen, 10_000) == 0.25  # 150 / 10,000 = 0.015
    assert fleet_rate(chosen, 0) == QUOTA * SHARE  # nobody yet: one lane may take it all
    assert rate_of(str(fleet_rate(chosen, 7))) is not None


def test_the_schedule_publishes_when_the_environment_names_the_parameter(
    lambda_env: None, rig: Rig, ssm: Any, parameter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAIR_RATE_ENV.parameter, parameter)
    monkeypatch.setenv(FAIR_RATE_ENV.quota, str(QUOTA))
    monkeypatch.setenv(FAIR_RATE_ENV.share, str(SHARE))
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert handler.lambda_handler(scheduled, None) == {"closed": 0}
    assert published(ssm, parameter)[0] == "150"  # no lane delivered yet


def test_an_sqs_batch_publishes_too(
    lambda_env: None, rig: Rig, ssm: Any, parameter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAIR_RATE_ENV.parameter, parameter)
    monkeypatch.setenv(FAIR_RATE_ENV.quota, str(QUOTA))
    assert handler.lambda_handler({"Records": []}, None) == {"batchItemFailures": []}
    assert published(ssm, parameter)[0] == "150"


def test_no_parameter_no_publisher() -> None:
    assert publisher_from_env({}, ssm=None, store=None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value"),
    [("quota", ""), ("quota", "-5"), ("share", "1.5"), ("share", "0"), ("floor", "0")],
)
def test_a_setting_out_of_range_is_named(name: str, value: str) -> None:
    env = {FAIR_RATE_ENV.parameter: "/posd/x/fair-rate", FAIR_RATE_ENV.quota: "500"}
    env[getattr(FAIR_RATE_ENV, name)] = value
    with pytest.raises(ConsumerConfigError, match=getattr(FAIR_RATE_ENV, name)):
        FairRateSettings.from_env(env)
