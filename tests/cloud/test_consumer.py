"""The reference consumer against moto (SQS, DynamoDB, KMS, EventBridge) with real posd events:
duplicated, reordered, missing, tampered, poison."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from cloud.alarms import AlarmBus, Alarms
from cloud.consumer import Consumer, ConsumerSettings, Outcome
from cloud.event_source import sqs_event
from cloud.kms import KmsUnwrapper
from tests.cards import TEST_PANS
from tests.cloud.conftest import (
    CA,
    GRACE_SECONDS,
    MAX_RECEIVE_COUNT,
    RECORDS,
    Delivered,
    Rig,
    alarm_entry,
    checkpoint_entry,
    deliver,
)
from wire.events import parse_message


def tamper(body: str, change: str) -> str:
    """A record as an attacker on the way would alter it."""
    event = json.loads(body)
    detail = event["detail"]
    if change == "ciphertext":
        blob = bytearray(base64.b64decode(detail["envelope"]["ciphertext"]))
        blob[0] ^= 0x01
        detail["envelope"]["ciphertext"] = base64.b64encode(bytes(blob)).decode()
    elif change == "amount":
        detail["meta"]["amount"] += 1000
    return json.dumps(event)


def test_shuffled_duplicated_complete_range_is_counted_once_and_verifies(
    rig: Rig, delivered: Delivered
) -> None:
    bodies = delivered.records + delivered.records[::3]  # a third of them twice
    random.Random(7).shuffle(bodies)
    rig.send(bodies)
    rig.send_entries([checkpoint_entry(delivered, 1, RECORDS)])
    rig.drain()

    payments = rig.items("payments")
    assert sorted(p["seq"] for p in payments) == list(range(1, RECORDS + 1))
    assert {p["masked_pan"][-4:] for p in payments} == {pan[-4:] for pan in TEST_PANS}
    assert all(TEST_PANS[0] not in json.dumps(p, default=str) for p in payments)
    copies = sum(int(e["copies"]) for e in rig.items("events"))
    assert copies == len(bodies) + 1  # every copy counted, each applied once
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "complete"
    assert "open" not in rig.checkpoint(delivered.journal_id, 1)
    assert rig.raised() == []


def test_a_missing_record_raises_a_gap_alarm_after_the_grace_period_and_a_late_one_closes_it(
    rig: Rig, delivered: Delivered
) -> None:
    missing = 5
    rig.send([b for seq, b in enumerate(delivered.records, 1) if seq != missing])
    rig.send_entries([checkpoint_entry(delivered, 1, RECORDS)])
    rig.drain()
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "open"
    assert rig.raised() == []  # within the grace period: a lane may just be slow

    rig.clock.now += GRACE_SECONDS
    rig.consumer.recheck_open()
    gap = rig.checkpoint(delivered.journal_id, 1)
    assert gap["state"] == "gap"
    assert gap["missing"] == [missing]
    (alarm,) = rig.raised()
    assert (alarm["alarm"], alarm["missing"], alarm["first_seq"]) == ("gap", [missing], 1)
    rig.consumer.recheck_open()
    assert rig.raised() == []  # raised once

    rig.send([delivered.records[missing - 1]])
    rig.drain()
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "complete"


def test_a_tampered_record_is_rejected_alarmed_never_a_payment(
    rig: Rig, delivered: Delivered
) -> None:
    bad_ciphertext, bad_amount = 3, 8
    bodies = list(delivered.records)
    bodies[bad_ciphertext - 1] = tamper(bodies[bad_ciphertext - 1], "ciphertext")
    bodies[bad_amount - 1] = tamper(bodies[bad_amount - 1], "amount")
    rig.send(bodies)
    rig.send_entries([checkpoint_entry(delivered, 1, RECORDS)])
    rig.drain()

    seqs = {p["seq"] for p in rig.items("payments")}
    assert seqs == set(range(1, RECORDS + 1)) - {bad_ciphertext, bad_amount}
    alarms = rig.raised()
    assert sorted((a["alarm"], a["seq"]) for a in alarms) == [
        ("record_rejected", bad_ciphertext),
        ("record_rejected", bad_amount),
    ]
    assert {a["alarm"] for a in rig.items("alarms")} == {"record_rejected"}
    # The tampered copies do not count as received: past the grace period it is a gap ...
    rig.clock.now += GRACE_SECONDS
    rig.consumer.recheck_open()
    assert rig.checkpoint(delivered.journal_id, 1)["missing"] == [bad_ciphertext, bad_amount]
    # ... until the genuine copies arrive (the terminal resends after a lost answer).
    rig.send([delivered.records[bad_ciphertext - 1], delivered.records[bad_amount - 1]])
    rig.drain()
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "complete"


def test_a_record_reported_tampered_by_the_terminal_completes_its_range(
    rig: Rig, delivered: Delivered
) -> None:
    reported = 6
    rig.send([b for seq, b in enumerate(delivered.records, 1) if seq != reported])
    rig.send_entries([alarm_entry(delivered, reported), checkpoint_entry(delivered, 1, RECORDS)])
    rig.drain()
    checkpoint = rig.checkpoint(delivered.journal_id, 1)
    assert checkpoint["state"] == "complete"
    assert checkpoint["reported_tampered"] == [reported]
    assert checkpoint["unverified_links"] == [reported + 1]
    (alarm,) = (a for a in rig.items("alarms") if a["origin"] == "terminal")
    assert (alarm["alarm"], alarm["seq"]) == ("tampered_record", reported)


def test_a_checkpoint_whose_chain_does_not_hold_is_broken_and_alarmed(
    rig: Rig, delivered: Delivered
) -> None:
    rig.send(delivered.records)
    forged = checkpoint_entry(delivered, 1, 6, chain=delivered.chains[6])  # seq 7's chain
    rig.send_entries([forged, checkpoint_entry(delivered, 7, RECORDS)])
    rig.drain()
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "broken"
    assert rig.checkpoint(delivered.journal_id, 7)["state"] == "complete"
    alarms = {a["alarm"]: a for a in rig.raised()}
    assert set(alarms) == {"chain_mismatch", "chain_discontinuity"}
    assert alarms["chain_mismatch"]["first_bad_seq"] == 6
    # 7..12 chains from seq 6, not from the forged range's end (seq 7's chain)
    assert alarms["chain_discontinuity"]["first_seq"] == 7


def test_a_poison_message_fails_alone_and_ends_in_the_dlq(rig: Rig, delivered: Delivered) -> None:
    poison = ["not json", json.dumps({"detail": {"schema": "posd.event/1", "seq": "x"}})]
    rig.send([delivered.records[0], *poison, delivered.records[1]])
    rig.drain()

    assert {p["seq"] for p in rig.items("payments")} == {1, 2}
    assert rig.feeder.fed.failures == len(poison) * MAX_RECEIVE_COUNT
    dead = rig.sqs.receive_message(QueueUrl=rig.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in dead) == sorted(poison)
    left = rig.sqs.get_queue_attributes(
        QueueUrl=rig.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_a_duplicate_is_recognised_before_it_is_decrypted(rig: Rig, delivered: Delivered) -> None:
    message = parse_message(delivered.records[0])
    assert rig.consumer.process(message) is Outcome.NEW
    assert rig.consumer.process(message) is Outcome.DUPLICATE
    assert len(rig.items("payments")) == 1


def test_a_range_that_never_completes_does_not_starve_the_others_of_rechecks(
    rig: Rig, delivered: Delivered, kms_client: Any, events_client: Any
) -> None:
    lost, late = 3, 9  # seq 3 never comes; seq 9 comes after its checkpoint
    consumer = Consumer(
        rig.store,
        Alarms(rig.store, AlarmBus(events_client, rig.alarms.bus_name)),
        KmsUnwrapper(kms_client),
        CA.trust_anchor(),
        ConsumerSettings(gap_grace_seconds=GRACE_SECONDS, recheck_limit=1),
        clock=rig.clock,
    )
    first, second = deliver(
        events_client,
        rig.sqs,
        [checkpoint_entry(delivered, 1, 6), checkpoint_entry(delivered, 7, RECORDS)],
    )
    for seq, body in enumerate(delivered.records, 1):
        if seq not in (lost, late):
            consumer.process(parse_message(body))
    consumer.process(parse_message(first))
    rig.clock.now += 1
    consumer.process(parse_message(second))
    consumer.process(parse_message(delivered.records[late - 1]))

    rig.clock.now += 1
    assert consumer.recheck_open() == 0  # the range 1..6, checked the longest ago
    assert consumer.recheck_open() == 1  # then 7..12, complete by now
    assert rig.checkpoint(delivered.journal_id, 7)["state"] == "complete"
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "open"


def test_from_a_fifo_queue_a_group_stops_at_its_first_failure(
    rig: Rig, delivered: Delivered
) -> None:
    """The v2 path's queue is FIFO, one group per terminal: after a failed message, the rest of
    its group is reported failed too (Lambda's rule for FIFO sources), other groups go on."""
    url = rig.sqs.create_queue(
        QueueName=f"posd-fifo-{delivered.journal_id[:8]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    arn = rig.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    first, second, other = delivered.records[:3]
    sent = [("lane-a", first), ("lane-a", "poison"), ("lane-a", second), ("lane-b", other)]
    for index, (group, body) in enumerate(sent):
        rig.sqs.send_message(
            QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=str(index)
        )
    messages = rig.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    by_body = {m["Body"]: m["MessageId"] for m in messages}

    answer = rig.consumer.handle_sqs(sqs_event(messages, arn, "eu-west-1"))

    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    assert failed == {by_body["poison"], by_body[second]}
    assert by_body[other] not in failed
