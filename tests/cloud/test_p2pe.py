"""P2PE records through the consumer: the encrypted tracks are opened only by AWS Payment
Cryptography (the local stand-in, through the real boto3 client), re-encrypted to the
processor's key by default; nothing of a card number but its mask reaches a table, a log line
or a metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from structlog.testing import capture_logs

from cloud import handler
from cloud.alarms import P2PE_REFUSED
from cloud.consumer import Consumer
from cloud.event_source import sqs_event
from cloud.p2pe import P2peSettings, PaymentCryptography
from cloud.records import HELD, P2PE_HELD
from demo.localaws.emulator import EMULATOR_REGION
from demo.localaws.payment_crypto import (
    AES_BDK_ALIAS,
    DECRYPT_DATA,
    PROCESSOR_ALIAS,
    RE_ENCRYPT_DATA,
    TDES_BDK_ALIAS,
    TEST_AES_BDK,
    TEST_TDES_BDK,
    PaymentCryptographyEndpoint,
    crypt,
)
from tests.cards import TEST_PANS
from tests.cloud.conftest import (
    GRACE_SECONDS,
    Delivered,
    Payload,
    Rig,
    checkpoint_entry,
    deliver,
    journal_payments,
    lane_key,
)
from tests.p2pe import encrypted_block, ksn_for
from wire.masking import mask_pan
from wire.p2pe import P2PE_FIELD, DukptScheme

P2PE_RECORDS = 4
BDKS = {
    DukptScheme.TDES_2KEY: (TDES_BDK_ALIAS, TEST_TDES_BDK),
    DukptScheme.AES_128: (AES_BDK_ALIAS, TEST_AES_BDK),
}
SCHEMES = list(DukptScheme)
ONE_TRY = Config(retries={"total_max_attempts": 1})  # the queue retries, not the client


def p2pe_payload(key_ref: str | None = None) -> Payload:
    """Swipes on a secure reader, alternating TDES and AES DUKPT: the masked PAN in the clear
    metadata, the encrypted block in the secret (what posd journals in P2PE mode)."""

    def payload(index: int, pan: str) -> tuple[dict[str, Any], bytes]:
        scheme = SCHEMES[index % len(SCHEMES)]
        alias, bdk = BDKS[scheme]
        block = encrypted_block(pan, scheme, bdk, key_ref or alias, ksn_for(scheme, index + 1))
        meta = {"amount": 100 + index, "currency": "EUR", "masked_pan": mask_pan(pan)}
        return meta, json.dumps({P2PE_FIELD: block.to_json()}).encode()

    return payload


def mislabelled_payload(index: int, pan: str) -> tuple[dict[str, Any], bytes]:
    """A block whose track is another card than the masked PAN the record shows."""
    meta, secret = p2pe_payload()(index, pan)
    other = next(p for p in TEST_PANS if p[-4:] != pan[-4:])
    return {**meta, "masked_pan": mask_pan(other)}, secret


def malformed_payload(index: int, pan: str) -> tuple[dict[str, Any], bytes]:
    meta = {"amount": 100 + index, "currency": "EUR", "masked_pan": mask_pan(pan)}
    return meta, json.dumps({P2PE_FIELD: {"schema": "posd.p2pe/0"}}).encode()


def deliver_p2pe(
    rig: Rig, tmp_path: Path, payload: Payload, count: int = P2PE_RECORDS
) -> Delivered:
    journaled = journal_payments(
        tmp_path / "state", lane_key(rig.kms), count=count, payload=payload
    )
    return Delivered(
        journaled.journal_id,
        deliver(rig.events, rig.sqs, journaled.entries),
        journaled.chains,
    )


def consumer_for(rig: Rig, hsm: PaymentCryptographyEndpoint, **settings: Any) -> Consumer:
    options = {"outgoing_key": PROCESSOR_ALIAS, **settings}
    return rig.consumer_with(p2pe=PaymentCryptography(hsm.client(ONE_TRY), P2peSettings(**options)))


def clear_pans_in(text: str) -> list[str]:
    return [pan for pan in TEST_PANS if pan in text]


def everything_stored(rig: Rig) -> str:
    tables = ("payments", "records", "events", "alarms", "checkpoints")
    return json.dumps({name: rig.items(name) for name in tables}, default=repr)


def run(rig: Rig, consumer: Consumer, delivered: Delivered) -> str:
    """Feed the records and their checkpoint to `consumer`; what it logged and printed."""
    rig.consumer = consumer
    rig.send(delivered.records)
    rig.send_entries([checkpoint_entry(delivered, 1, len(delivered.records))])
    with capture_logs() as logs:
        rig.drain()
    return json.dumps(logs, default=repr)


def test_a_p2pe_payment_is_filed_re_encrypted_with_its_masked_pan_only(
    rig: Rig, hsm: PaymentCryptographyEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivered = deliver_p2pe(rig, tmp_path, p2pe_payload())
    logged = run(rig, consumer_for(rig, hsm), delivered)

    payments = sorted(rig.items("payments"), key=lambda p: int(p["seq"]))
    assert len(payments) == P2PE_RECORDS
    processor = hsm.key(PROCESSOR_ALIAS)
    for index, payment in enumerate(payments):
        pan = TEST_PANS[index % len(TEST_PANS)]
        assert payment["masked_pan"] == mask_pan(pan)
        p2pe = payment["p2pe"]
        assert (p2pe["key_arn"], p2pe["key_check_value"]) == (processor.arn, processor.check_value)
        (track,) = p2pe["tracks"]
        clear = crypt(
            processor.algorithm,
            processor.material,
            p2pe["mode"],
            bytes.fromhex(track["iv"]),
            bytes.fromhex(track["ciphertext"]),
            encrypt=False,
        )  # what the processor does with it
        assert pan in clear[: int(track["length"])].decode()
    assert hsm.stats.served == {RE_ENCRYPT_DATA: P2PE_RECORDS}
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "complete"
    assert rig.raised() == []
    printed = capsys.readouterr()
    metrics = json.dumps(list(rig.metrics.counts.items()))
    for text in (everything_stored(rig), logged, printed.out, printed.err, metrics):
        assert clear_pans_in(text) == []


def test_decrypt_data_only_when_enabled_and_then_only_the_mask_is_kept(
    rig: Rig, hsm: PaymentCryptographyEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivered = deliver_p2pe(rig, tmp_path, p2pe_payload())
    with capture_logs() as started:
        consumer = consumer_for(rig, hsm, outgoing_key="", decrypt=True)
    assert [e["event"] for e in started] == ["cloud.p2pe_decrypt_enabled"]
    logged = run(rig, consumer, delivered)

    payments = rig.items("payments")
    assert {p["masked_pan"] for p in payments} == {mask_pan(p) for p in TEST_PANS}
    assert all("p2pe" not in p for p in payments)
    assert hsm.stats.served == {DECRYPT_DATA: P2PE_RECORDS}
    assert logged.count("cloud.p2pe_decrypting") == P2PE_RECORDS
    printed = capsys.readouterr()
    for text in (everything_stored(rig), logged, printed.out, printed.err):
        assert clear_pans_in(text) == []


@pytest.mark.parametrize(
    ("payload", "settings", "reason"),
    [
        (p2pe_payload("alias/no-such-bdk"), {}, "ResourceNotFoundException"),
        (p2pe_payload(), None, "not_configured"),
        (p2pe_payload(), {"outgoing_key": ""}, "not_configured"),
        (malformed_payload, {}, "malformed_block"),
        (mislabelled_payload, {"decrypt": True}, "pan_mismatch"),
    ],
    ids=["unknown key", "no client", "no processor key", "malformed block", "other card"],
)
def test_a_refused_block_holds_the_record_with_an_alarm_and_files_nothing(
    rig: Rig,
    hsm: PaymentCryptographyEndpoint,
    tmp_path: Path,
    payload: Payload,
    settings: dict[str, Any] | None,
    reason: str,
) -> None:
    delivered = deliver_p2pe(rig, tmp_path, payload)
    consumer = rig.consumer_with() if settings is None else consumer_for(rig, hsm, **settings)
    run(rig, consumer, delivered)

    assert rig.items("payments") == []
    rows = rig.items("records")
    assert len(rows) == P2PE_RECORDS
    assert {row[P2PE_HELD]["reason"] for row in rows} == {reason}
    assert all(HELD not in row for row in rows)
    alarms = [a for a in rig.raised() if a["alarm"] == P2PE_REFUSED]
    assert len(alarms) == P2PE_RECORDS
    assert {a["refusal"] for a in alarms} == {reason}
    assert rig.metrics.alarms(P2PE_REFUSED) == P2PE_RECORDS
    # the records are authentic: their range is complete, and nothing is missing
    rig.clock.now += GRACE_SECONDS
    rig.consumer.recheck_open()
    assert rig.checkpoint(delivered.journal_id, 1)["state"] == "complete"
    assert clear_pans_in(everything_stored(rig)) == []


def test_a_throttled_call_fails_the_message_and_its_redelivery_is_filed(
    rig: Rig, hsm: PaymentCryptographyEndpoint, tmp_path: Path
) -> None:
    delivered = deliver_p2pe(rig, tmp_path, p2pe_payload(), count=1)
    consumer = consumer_for(rig, hsm)
    rig.send(delivered.records)
    messages = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=1)["Messages"]
    batch = sqs_event(messages, "arn:aws:sqs:q", EMULATOR_REGION)

    hsm.fail_next("ThrottlingException")
    answer = consumer.handle_sqs(batch)
    assert answer == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert rig.items("payments") == []
    assert rig.items("records") == []  # nothing claimed: the retry starts afresh
    assert rig.raised() == []

    assert consumer.handle_sqs(batch) == {"batchItemFailures": []}  # SQS delivers it again
    (payment,) = rig.items("payments")
    assert payment["masked_pan"] == mask_pan(TEST_PANS[0])
    assert hsm.stats.requests == {RE_ENCRYPT_DATA: 2}


@pytest.mark.usefixtures("lambda_env")
def test_the_function_reaches_payment_cryptography_as_configured(
    rig: Rig,
    hsm: PaymentCryptographyEndpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY_DATA", hsm.endpoint_url)
    monkeypatch.setenv("P2PE_OUTGOING_KEY", hsm.key(PROCESSOR_ALIAS).arn)
    delivered = deliver_p2pe(rig, tmp_path, p2pe_payload(), count=2)
    rig.send(delivered.records)
    messages: list[dict[str, Any]] = []
    while len(messages) < len(delivered.records):
        reply = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=10)
        messages.extend(reply.get("Messages", []))

    answer = handler.lambda_handler(sqs_event(messages, "arn:aws:sqs:q", EMULATOR_REGION), None)
    assert answer == {"batchItemFailures": []}
    assert {p["p2pe"]["key_arn"] for p in rig.items("payments")} == {hsm.key(PROCESSOR_ALIAS).arn}
    assert hsm.stats.served == {RE_ENCRYPT_DATA: 2}
