"""The consumer files only what it can attribute (issue 21, Seen 1 and 4), against moto.

A terminal's IAM policy lets it get data keys only under its own encryption context; the
consumer unwraps under the context of the identity a record claims. An offline-wrapped
(`kms-rsa`) record binds nobody: it is held until a signed checkpoint covers it. Side events
prove their lane by signature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud import handler
from cloud.alarms import CONFLICTING_RECORD, FORGED_RECORD, FORGED_SIGNATURE
from cloud.consumer import Outcome
from cloud.event_source import sqs_event
from cloud.metrics import RECORDS_FILED, RECORDS_HELD, CountingMetrics
from cloud.records import HELD, REPORTED_TAMPERED
from demo.localaws.emulator import EMULATOR_REGION, LocalAws
from demo.pki import LocalCa
from posd.keys.kms import KmsRsaOfflineSource
from sync.events import EventBuilder
from sync.outbox import OutboxRecord
from tests.cards import TEST_PANS
from tests.cloud.conftest import (
    CA,
    RECORDS,
    SOURCE,
    STORE_ID,
    TERMINAL_ID,
    Delivered,
    Rig,
    alarm_entry,
    checkpoint_entry,
    deliver,
    journal_payments,
    lane_key,
)
from wire.envelope import GENESIS_CHAIN, RecordIdentity, Sealer, wrapped_key_digest
from wire.events import parse_message
from wire.keys import identity_context

VICTIM_STORE, VICTIM_LANE = "store-0099", "lane-01"


def forged_entries(tmp_path: Path, kms_client: Any, count: int = 3) -> list[dict[str, Any]]:
    """Records sealed by our lane (its own data keys, as IAM allows) claiming the victim."""
    return journal_payments(
        tmp_path / "forger", lane_key(kms_client), VICTIM_STORE, VICTIM_LANE, count
    ).entries


def with_context(body: str, context: dict[str, str]) -> str:
    """The record with its data key's encryption context edited (what an attacker controls)."""
    event = json.loads(body)
    event["detail"]["envelope"]["data_key"]["encryption_context"] = context
    return json.dumps(event)


def test_a_record_sealed_with_our_key_claiming_another_lane_is_never_filed(
    tmp_path: Path, rig: Rig, kms_client: Any
) -> None:
    bodies = rig.send_entries(forged_entries(tmp_path, kms_client))
    rig.drain()

    assert rig.items("payments") == []
    assert [r for r in rig.items("records") if r["store_id"] == VICTIM_STORE] == []
    alarms = rig.raised()
    assert {a["alarm"] for a in alarms} == {FORGED_RECORD}
    assert len(alarms) == len(bodies)
    # the data key unwraps under our lane's context: the alarm names who really sealed it
    assert alarms[0]["sealed_by"] == identity_context(STORE_ID, TERMINAL_ID)
    assert (alarms[0]["store_id"], alarms[0]["terminal_id"]) == (VICTIM_STORE, VICTIM_LANE)


def test_a_forged_record_whose_context_was_edited_to_match_its_claim_is_refused_by_kms(
    tmp_path: Path, rig: Rig, kms_client: Any
) -> None:
    (body,) = deliver(rig.events, rig.sqs, forged_entries(tmp_path, kms_client, count=1))
    edited = with_context(body, identity_context(VICTIM_STORE, VICTIM_LANE))

    assert rig.consumer.process(parse_message(edited)) is Outcome.REJECTED
    assert rig.items("payments") == []
    (alarm,) = rig.raised()
    assert alarm["alarm"] == FORGED_RECORD
    assert alarm["sealed_by"] is None  # the edited context proves nothing about its sealer


@pytest.mark.usefixtures("lambda_env")
def test_a_forged_record_through_the_real_handler_is_never_filed(
    tmp_path: Path, rig: Rig, kms_client: Any, delivered: Delivered
) -> None:
    forged = deliver(rig.events, rig.sqs, forged_entries(tmp_path, kms_client, count=2))
    rig.send([*forged, *delivered.records[:3]])
    messages = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=10)
    answer = handler.lambda_handler(
        sqs_event(messages["Messages"], "arn:aws:sqs:q", EMULATOR_REGION), None
    )

    assert answer == {"batchItemFailures": []}  # refused for good, never retried
    payments = rig.items("payments")
    assert {(p["store_id"], p["seq"]) for p in payments} == {(STORE_ID, s) for s in (1, 2, 3)}
    alarmed = [a for a in rig.raised() if a["alarm"] == FORGED_RECORD]
    assert [(a["store_id"], a["terminal_id"]) for a in alarmed] == [(VICTIM_STORE, VICTIM_LANE)] * 2


def offline_entries(tmp_path: Path, local_aws: LocalAws, kms_client: Any) -> tuple[str, Any]:
    """An RSA key whose public half a lane caches to wrap data keys offline."""
    arn = kms_client.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"][
        "Arn"
    ]
    offline = KmsRsaOfflineSource(kms_client, arn, tmp_path / f"offline-{arn[-6:]}.json")
    offline.refresh_public_key()
    return arn, offline


def forge_offline(offline: Any, genuine_body: str, secret: bytes = b'{"pan": "x"}') -> str:
    """The genuine record's identity (event_id, journal, seq, lane, meta) resealed by someone
    holding only the offline RSA public key: a data key of their own, wrapped with it."""
    detail = json.loads(genuine_body)["detail"]
    data_key = offline.new_data_key()
    identity = RecordIdentity(
        seq=detail["seq"],
        event_id=detail["event_id"],
        kind=detail["kind"],
        captured_at=detail["captured_at"],
        client_ref=detail["client_ref"],
        store_id=detail["store_id"],
        terminal_id=detail["terminal_id"],
        meta=detail["meta"],
        data_key_id=data_key.key_id,
        wrapped_key_sha256=wrapped_key_digest(data_key.wrapped.wrapped_key),
    )
    aad = identity.aad()
    nonce, ciphertext = Sealer(data_key.plaintext).seal(secret, aad)
    record = OutboxRecord(
        seq=identity.seq,
        event_id=identity.event_id,
        kind=identity.kind,
        captured_at=identity.captured_at,
        client_ref=identity.client_ref,
        meta=identity.meta,
        chain=GENESIS_CHAIN.hex(),
        nonce=nonce,
        ciphertext=ciphertext,
        aad=aad,
        data_key=data_key.wrapped,
        attempts=0,
    )
    builder = EventBuilder(
        identity.store_id, identity.terminal_id, SOURCE, "unused", detail["journal_id"]
    )
    entry = builder.build(record).request_entry
    return json.dumps({"detail-type": entry["DetailType"], "detail": json.loads(entry["Detail"])})


def test_an_offline_wrapped_record_is_held_not_filed_until_a_checkpoint_proves_it(
    tmp_path: Path, local_aws: LocalAws, kms_client: Any, rig: Rig
) -> None:
    """Anyone with the RSA public key can wrap a data key and claim any lane: such a record is
    decrypted and checked, but held (masked fields only) rather than filed."""
    arn, offline = offline_entries(tmp_path, local_aws, kms_client)
    consumer = rig.with_unwrapper({arn: local_aws.rsa_private_key(arn)})
    journaled = journal_payments(tmp_path / "state", offline, count=4)
    bodies = deliver(rig.events, rig.sqs, journaled.entries)

    assert [consumer.process(parse_message(b)) for b in bodies] == [Outcome.NEW] * 4
    assert rig.items("payments") == []
    rows = rig.items("records")
    assert sorted(r["seq"] for r in rows if HELD in r) == [1, 2, 3, 4]
    assert all(r[HELD]["key_provider"] == "kms-rsa" for r in rows)
    assert "4111111111111111" not in json.dumps(rows, default=repr)
    metrics = rig.metrics
    assert isinstance(metrics, CountingMetrics)
    assert metrics.counts[(RECORDS_HELD, None)] == 4

    # a checkpoint signed by another lane's certificate proves nothing: still held
    offline_lane = Delivered(journaled.journal_id, bodies, journaled.chains)
    other_lane = CA.issue(STORE_ID, "lane-99")
    (forged,) = deliver(rig.events, rig.sqs, [checkpoint_entry(offline_lane, 1, 4, other_lane)])
    assert consumer.process(parse_message(forged)) is Outcome.REJECTED
    assert rig.items("payments") == []

    # the lane's own signed checkpoint covers them: complete, the chain holds, filed
    (checkpoint,) = deliver(rig.events, rig.sqs, [checkpoint_entry(offline_lane, 1, 4)])
    assert consumer.process(parse_message(checkpoint)) is Outcome.NEW
    payments = rig.items("payments")
    assert sorted(p["seq"] for p in payments) == [1, 2, 3, 4]
    assert {p["key_provider"] for p in payments} == {"kms-rsa"}
    assert sorted(p["masked_pan"][-4:] for p in payments) == sorted(p[-4:] for p in TEST_PANS)
    assert [r for r in rig.items("records") if HELD in r] == []
    assert metrics.counts[(RECORDS_FILED, None)] == 4


def test_a_forged_offline_record_cannot_take_a_seq_a_genuine_record_holds(
    tmp_path: Path, local_aws: LocalAws, kms_client: Any, rig: Rig, delivered: Delivered
) -> None:
    """A second record for one seq is a conflict: the first (here the KMS-bound, genuine one)
    keeps the seq, the other is alarmed and never filed or held."""
    arn, offline = offline_entries(tmp_path, local_aws, kms_client)
    consumer = rig.with_unwrapper({arn: local_aws.rsa_private_key(arn)})
    genuine = parse_message(delivered.records[0])
    assert consumer.process(genuine) is Outcome.NEW

    forged = forge_offline(offline, delivered.records[0])
    assert consumer.process(parse_message(forged)) is Outcome.REJECTED

    (row,) = rig.items("records")
    assert row["event_id"] == genuine.origin.event_id and HELD not in row
    (alarm,) = rig.raised()
    assert (alarm["alarm"], alarm["seq"], alarm["kept"]) == (
        CONFLICTING_RECORD,
        1,
        "the other record",
    )


def test_a_forgery_under_a_genuine_event_id_does_not_make_the_genuine_record_a_duplicate(
    tmp_path: Path, local_aws: LocalAws, kms_client: Any, rig: Rig, delivered: Delivered
) -> None:
    """Dedupe is on the event_id *and* its content. An offline-wrapped forgery that reuses a
    genuine record's event_id, journal and seq, and comes first, is held (it binds nobody);
    the genuine record is then not a duplicate: it takes the seq, is filed, and the
    conflict is alarmed."""
    arn, offline = offline_entries(tmp_path, local_aws, kms_client)
    consumer = rig.with_unwrapper({arn: local_aws.rsa_private_key(arn)})
    genuine = parse_message(delivered.records[0])
    forged_message = parse_message(forge_offline(offline, delivered.records[0]))
    assert consumer.process(forged_message) is Outcome.NEW  # held, not filed
    assert rig.items("payments") == []

    assert consumer.process(genuine) is Outcome.NEW
    assert consumer.process(genuine) is Outcome.DUPLICATE
    assert [p["event_id"] for p in rig.items("payments")] == [genuine.origin.event_id]
    (alarm,) = rig.raised()
    assert (alarm["alarm"], alarm["kept"]) == (CONFLICTING_RECORD, "this record")


@pytest.mark.parametrize("first", ["record", "alarm"])
def test_a_tamper_report_never_overwrites_the_genuine_record(
    rig: Rig, delivered: Delivered, first: str
) -> None:
    """Seen 4: the report was a read, then an unconditional put; a record landing between the
    two was overwritten. Whichever comes first now, the record keeps its seq."""
    record = parse_message(delivered.records[4])
    (report_body,) = deliver(rig.events, rig.sqs, [alarm_entry(delivered, 5)])
    report = parse_message(report_body)
    batch = [record, report] if first == "record" else [report, record]

    assert rig.consumer.process_many(batch) == [Outcome.NEW, Outcome.NEW]
    (row,) = rig.items("records")
    assert (row["state"], row["event_id"]) == ("received", record.origin.event_id)
    assert row["state"] != REPORTED_TAMPERED
    assert [p["seq"] for p in rig.items("payments")] == [5]


@pytest.mark.parametrize(
    ("signer", "reason"),
    [
        (None, "unsigned"),
        (CA.issue(STORE_ID, "lane-99"), "identity_mismatch"),
        (LocalCa().issue(STORE_ID, TERMINAL_ID), "certificate_untrusted"),
    ],
    ids=["unsigned", "another-lane", "another-ca"],
)
def test_a_terminal_alarm_that_its_signature_does_not_prove_is_not_filed(
    rig: Rig, delivered: Delivered, signer: Any, reason: str
) -> None:
    (body,) = deliver(rig.events, rig.sqs, [alarm_entry(delivered, 5, credentials=signer)])
    assert rig.consumer.process(parse_message(body)) is Outcome.REJECTED
    assert rig.items("alarms") == [] or all(a["origin"] == "consumer" for a in rig.items("alarms"))
    assert [r for r in rig.items("records")] == []
    (alarm,) = rig.raised()
    assert (alarm["alarm"], alarm["signature_error"]) == (FORGED_SIGNATURE, reason)


def test_a_revoked_certificate_proves_nothing(rig: Rig, delivered: Delivered) -> None:
    stolen = CA.issue(STORE_ID, TERMINAL_ID)
    consumer = rig.with_trust(CA.trust_anchor(revoked=[stolen.certificate]))
    (body,) = deliver(rig.events, rig.sqs, [alarm_entry(delivered, 5, credentials=stolen)])
    assert consumer.process(parse_message(body)) is Outcome.REJECTED
    (alarm,) = rig.raised()
    assert (alarm["alarm"], alarm["signature_error"]) == (FORGED_SIGNATURE, "certificate_revoked")
    assert RECORDS > 5
