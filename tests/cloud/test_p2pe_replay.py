"""A replayed swipe: one encrypted block (same ciphertext, same KSN) as a second payment under
a new event_id. A genuine reader never uses a KSN twice, so the consumer files the first and
holds the replay with `p2pe_ksn_reused`; the same event delivered again is not a replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloud.alarms import P2PE_KSN_REUSED, P2PE_REFUSED
from cloud.event_source import sqs_event
from cloud.records import P2PE_HELD
from demo.localaws.emulator import EMULATOR_REGION
from demo.localaws.payment_crypto import RE_ENCRYPT_DATA, PaymentCryptographyEndpoint
from tests.cards import TEST_PANS
from tests.cloud.conftest import Rig, checkpoint_entry
from tests.cloud.test_p2pe import (
    BDKS,
    clear_pans_in,
    consumer_for,
    deliver_p2pe,
    everything_stored,
    p2pe_payload,
)
from tests.p2pe import encrypted_block, ksn_for
from wire.masking import mask_pan
from wire.p2pe import P2PE_FIELD, DukptScheme

SCHEME = DukptScheme.TDES_2KEY
FIRST, REPLAY = 0, 1
PayloadFactory = Callable[[int, str], tuple[dict[str, Any], bytes]]


def replayed_payload(index: int, pan: str) -> tuple[dict[str, Any], bytes]:
    """Every record carries the first swipe's block: a new payment (its own amount, event_id
    and seq), the captured ciphertext and KSN."""
    meta, secret = p2pe_payload()(FIRST, TEST_PANS[FIRST])
    return {**meta, "amount": 500 + index}, secret


def replay_naming_the_bdk(key_ref: str) -> PayloadFactory:
    """The replay names the same BDK another way (its key ARN instead of its alias): the
    service takes either, so a claim keyed on the name would let it through."""

    def payload(index: int, pan: str) -> tuple[dict[str, Any], bytes]:
        meta, secret = replayed_payload(index, pan)
        if index == REPLAY:
            document = json.loads(secret)
            document[P2PE_FIELD]["key_ref"] = key_ref
            secret = json.dumps(document).encode()
        return meta, secret

    return payload


def same_card_payload(index: int, pan: str) -> tuple[dict[str, Any], bytes]:
    """One card swiped twice on one reader: the KSN advances, so two payments."""
    alias, bdk = BDKS[SCHEME]
    block = encrypted_block(TEST_PANS[FIRST], SCHEME, bdk, alias, ksn_for(SCHEME, index + 1))
    meta = {"amount": 100 + index, "currency": "EUR", "masked_pan": mask_pan(TEST_PANS[FIRST])}
    return meta, json.dumps({P2PE_FIELD: block.to_json()}).encode()


def rows_by_seq(rig: Rig) -> dict[int, dict[str, Any]]:
    return {int(row["seq"]): row for row in rig.items("records")}


@pytest.mark.parametrize(
    ("restart", "renamed"),
    [(False, False), (True, False), (False, True)],
    ids=["same consumer", "after a restart", "the BDK named by its ARN"],
)
def test_a_replayed_swipe_is_held_with_an_alarm_and_the_first_stays_filed(
    rig: Rig, hsm: PaymentCryptographyEndpoint, tmp_path: Path, restart: bool, renamed: bool
) -> None:
    payload = replay_naming_the_bdk(hsm.key(BDKS[SCHEME][0]).arn) if renamed else replayed_payload
    delivered = deliver_p2pe(rig, tmp_path, payload, count=2)
    rig.consumer = consumer_for(rig, hsm)
    rig.send([delivered.records[FIRST]])
    rig.drain()
    if restart:  # a new process: nothing of the first delivery in memory
        rig.consumer = consumer_for(rig, hsm)
    rig.send([delivered.records[REPLAY]])
    rig.send_entries([checkpoint_entry(delivered, 1, 2)])
    rig.drain()

    rows = rows_by_seq(rig)
    first, replay = rows[1], rows[2]
    (payment,) = rig.items("payments")
    assert payment["event_id"] == first["event_id"]
    assert P2PE_HELD not in first
    assert replay[P2PE_HELD]["reason"] == "ksn_reused"
    assert replay[P2PE_HELD]["masked_pan"] == mask_pan(TEST_PANS[FIRST])
    assert "p2pe" not in replay[P2PE_HELD]  # never re-encrypted: the HSM saw one request
    assert hsm.stats.served == {RE_ENCRYPT_DATA: 1}
    (alarm,) = rig.raised()
    assert alarm["alarm"] == P2PE_KSN_REUSED
    assert (alarm["event_id"], alarm["first_event_id"]) == (replay["event_id"], first["event_id"])
    assert alarm["masked_pan"] == mask_pan(TEST_PANS[FIRST])
    assert alarm["ksn"] == ksn_for(SCHEME, 1).hex().upper()
    assert rig.metrics.alarms(P2PE_KSN_REUSED) == 1
    assert rig.metrics.alarms(P2PE_REFUSED) == 0
    # the replay is an authentic record of the lane: its seq is received, the range complete
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "complete"
    ciphertext = json.loads(replayed_payload(FIRST, "")[1])[P2PE_FIELD]["tracks"][0]["ciphertext"]
    assert ciphertext not in json.dumps(alarm)
    assert clear_pans_in(everything_stored(rig)) == []


def test_the_same_event_delivered_again_is_not_a_replay(
    rig: Rig, hsm: PaymentCryptographyEndpoint, tmp_path: Path
) -> None:
    """The KSN is claimed before the service is asked: a throttled first try leaves the claim,
    naming this event, and SQS's redelivery of it files the payment."""
    delivered = deliver_p2pe(rig, tmp_path, p2pe_payload(), count=1)
    consumer = consumer_for(rig, hsm)
    rig.send(delivered.records)
    messages = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=1)["Messages"]
    batch = sqs_event(messages, "arn:aws:sqs:q", EMULATOR_REGION)

    hsm.fail_next("ThrottlingException")
    assert consumer.handle_sqs(batch)["batchItemFailures"]
    assert consumer_for(rig, hsm).handle_sqs(batch) == {"batchItemFailures": []}
    assert consumer.handle_sqs(batch) == {"batchItemFailures": []}  # a copy: deduped

    (payment,) = rig.items("payments")
    assert payment["masked_pan"] == mask_pan(TEST_PANS[0])
    assert rig.raised() == []
    assert all(P2PE_HELD not in row for row in rig.items("records"))


def test_two_swipes_of_one_card_with_their_own_ksns_are_both_filed(
    rig: Rig, hsm: PaymentCryptographyEndpoint, tmp_path: Path
) -> None:
    delivered = deliver_p2pe(rig, tmp_path, same_card_payload, count=2)
    rig.consumer = consumer_for(rig, hsm)
    rig.send(delivered.records)
    rig.send_entries([checkpoint_entry(delivered, 1, 2)])
    rig.drain()

    payments = rig.items("payments")
    assert len(payments) == 2
    assert {p["masked_pan"] for p in payments} == {mask_pan(TEST_PANS[FIRST])}
    assert rig.raised() == []
    assert hsm.stats.served == {RE_ENCRYPT_DATA: 2}
