"""The Lambda entry point as Lambda calls it: configured by its environment only (the
template's variables, and boto3's own endpoint and credential variables, here moto's)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloud import handler
from cloud.errors import ConsumerConfigError
from cloud.event_source import sqs_event
from cloud.metrics import (
    ALARM_DIMENSION,
    ALARMS_RAISED,
    METRICS_NAMESPACE,
    METRICS_SERVICE,
    RECORDS_FILED,
)
from demo.localaws.emulator import EMULATOR_REGION
from tests.cloud.conftest import RECORDS, Delivered, Rig, checkpoint_entry, deliver
from wire.events import parse_message


def messages_of(rig: Rig, bodies: list[str]) -> list[dict[str, Any]]:
    rig.send(bodies)
    found: list[dict[str, Any]] = []
    while len(found) < len(bodies):
        reply = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=10)
        found.extend(reply.get("Messages", []))
    return found


@pytest.mark.usefixtures("lambda_env")
def test_an_sqs_batch_through_lambda_handler(rig: Rig, delivered: Delivered) -> None:
    batch = messages_of(rig, [*delivered.records[:9], "poison"])
    answer = handler.lambda_handler(sqs_event(batch, "arn:aws:sqs:q", EMULATOR_REGION), None)

    (poison,) = (m["MessageId"] for m in batch if m["Body"] == "poison")
    assert answer == {"batchItemFailures": [{"itemIdentifier": poison}]}
    assert len(rig.items("payments")) == 9
    assert RECORDS > 9


@pytest.mark.usefixtures("lambda_env")
def test_a_scheduled_invocation_closes_a_range_completed_since(
    rig: Rig, delivered: Delivered
) -> None:
    late = 4
    bodies = [b for seq, b in enumerate(delivered.records, 1) if seq != late]
    checkpoint = deliver(rig.events, rig.sqs, [checkpoint_entry(delivered, 1, RECORDS)])
    batch = messages_of(rig, bodies[:9]) + messages_of(rig, [*bodies[9:], *checkpoint])
    for start in range(0, len(batch), 10):
        event = sqs_event(batch[start : start + 10], "arn:aws:sqs:q", EMULATOR_REGION)
        assert handler.lambda_handler(event, None) == {"batchItemFailures": []}
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "gap"  # no grace here

    rig.consumer.process(parse_message(delivered.records[late - 1]))  # no re-check of its own
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert handler.lambda_handler(scheduled, None) == {"closed": 1}
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "complete"


def test_a_missing_setting_is_named() -> None:
    with pytest.raises(ConsumerConfigError, match="ALARM_BUS_NAME"):
        handler.consumer_from_env({})


@pytest.mark.usefixtures("lambda_env")
def test_the_function_writes_its_alarm_counts_as_embedded_metrics(
    rig: Rig, delivered: Delivered, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the template's CloudWatch alarms watch: `AlarmsRaised` by `Alarm`, in EMF."""
    event = json.loads(delivered.records[0])
    event["detail"]["meta"]["amount"] += 1000  # tampered on the way
    batch = messages_of(rig, [json.dumps(event), delivered.records[1]])
    handler.lambda_handler(sqs_event(batch, "arn:aws:sqs:q", EMULATOR_REGION), None)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    alarms = [m for m in lines if m.get(ALARM_DIMENSION) == "record_rejected"]
    assert [(m[ALARMS_RAISED], m["service"]) for m in alarms] == [([1.0], METRICS_SERVICE)]
    (directive,) = alarms[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    assert [ALARM_DIMENSION, "service"] in [sorted(d) for d in directive["Dimensions"]]
    (filed,) = [m for m in lines if RECORDS_FILED in m]
    assert filed[RECORDS_FILED] == [1.0]


@pytest.mark.parametrize("name", ["GAP_GRACE_SECONDS", "CHECKPOINT_SILENCE_SECONDS"])
def test_a_setting_that_is_not_seconds_is_named(name: str) -> None:
    with pytest.raises(ConsumerConfigError, match=f"{name} must be a number of seconds"):
        handler.consumer_from_env({"ALARM_BUS_NAME": "bus", name: "soon"})
