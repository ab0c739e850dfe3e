"""The lane signs what it asserts: checkpoints and alarms reach the bus (moto's EventBridge,
and the v2 endpoint) with a `signature` the chain's CA proves to be this lane's, and a signed
side event still fits PutEvents' limits."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from demo.devconfig import DevConfig
from posd.cli.main import main
from posd.journal import JOURNAL_FILE, Journal, JournalSettings
from posd.recorder import Recorder
from sync.eventbridge.v2 import event_group_id, system_metadata_bytes
from sync.events import entry_size
from sync.outbox import Alarm, Checkpoint
from sync.settings import PUT_EVENTS_DEFAULT_MAX_BYTES
from sync.side_events import SIDE_EVENTS_PER_REQUEST, SideOrigin, side_entry
from tests.sync.conftest import (
    CLI_RECORDS,
    SOURCE,
    STORE_ID,
    TERMINAL_ID,
    EngineFactory,
    Route,
    V2Route,
    fill,
    receive_all,
    record_payments,
)
from tests.terminal_identity import CA, lane_identity
from wire.events import ALARM_DETAIL_TYPE, ALARM_SCHEMA, CHECKPOINT_DETAIL_TYPE, CHECKPOINT_SCHEMA
from wire.signing import SIGNATURE_FIELD, Signer, SignerIdentity, signed_bytes

CHECKPOINT_EVERY = 100  # the journal's default: record_payments opens it with the defaults
TAMPERED_SEQ = 5
V2_RECORDS = 10  # two checkpoints at five records each


def damage(config_file: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(config_file.parent / "state" / JOURNAL_FILE, isolation_level=None)
    conn.execute(sql, args)
    conn.close()


def side_events(events: list[dict[str, Any]], schema: str) -> list[dict[str, Any]]:
    return [e for e in events if e["detail"]["schema"] == schema]


def distinct(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One of each event_id (delivery is at least once)."""
    return list({e["detail"]["event_id"]: e for e in events}.values())


def proven(detail: dict[str, Any]) -> tuple[str, str]:
    identity: SignerIdentity = CA.trust_anchor().verify(detail)
    return identity.store_id, identity.terminal_id


def test_a_lane_with_identity_sends_signed_checkpoints_and_alarms(
    config_file: Path,
    cli_config: DevConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    route: Route,
    sqs_client: Any,
) -> None:
    """Through the config, as the daemon and `posd sync flush` build the engine."""
    identity = lane_identity(tmp_path / "pki", STORE_ID, TERMINAL_ID)
    cli_config.amended(identity=identity).write(config_file)
    record_payments(config_file.parent, CHECKPOINT_EVERY - CLI_RECORDS)  # 1..100: a checkpoint
    damage(
        config_file, "UPDATE records SET ciphertext = randomblob(64) WHERE seq = ?", TAMPERED_SEQ
    )

    assert main(["sync", "flush", "--config", str(config_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["quarantined"] == 1

    received = receive_all(sqs_client, route.queue_url, CHECKPOINT_EVERY - 1 + 2)
    [checkpoint] = distinct(side_events(received, CHECKPOINT_SCHEMA))
    [alarm] = distinct(side_events(received, ALARM_SCHEMA))
    assert checkpoint["detail-type"] == CHECKPOINT_DETAIL_TYPE
    assert alarm["detail-type"] == ALARM_DETAIL_TYPE
    assert (checkpoint["detail"]["first_seq"], checkpoint["detail"]["last_seq"]) == (1, 100)
    assert alarm["detail"]["seq"] == TAMPERED_SEQ
    for event in (checkpoint, alarm):
        assert proven(event["detail"]) == (STORE_ID, TERMINAL_ID)
        assert event["detail"][SIGNATURE_FIELD]["scheme"] == "ecdsa-sha256"


def test_a_development_lane_without_identity_sends_them_unsigned(
    config_file: Path, capsys: pytest.CaptureFixture[str], route: Route, sqs_client: Any
) -> None:
    record_payments(config_file.parent, CHECKPOINT_EVERY - CLI_RECORDS)
    assert main(["sync", "flush", "--config", str(config_file), "--json"]) == 0
    capsys.readouterr()
    received = receive_all(sqs_client, route.queue_url, CHECKPOINT_EVERY + 1)
    [checkpoint] = distinct(side_events(received, CHECKPOINT_SCHEMA))
    assert SIGNATURE_FIELD not in checkpoint["detail"]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """The sync fixtures' journal, cutting a checkpoint every five records."""
    with Journal.open(tmp_path / "state", JournalSettings(checkpoint_every_records=5)) as opened:
        yield opened


def test_signed_checkpoints_go_through_v2_and_verify(
    recorder: Recorder,
    make_v2_engine: EngineFactory,
    v2_route: V2Route,
    sqs_client: Any,
) -> None:
    fill(recorder, V2_RECORDS)
    signer = CA.issue(STORE_ID, TERMINAL_ID).signer()
    engine = make_v2_engine(v2_route.endpoint.endpoint_url, signer=signer)
    assert engine.drain(timeout=20).delivered == V2_RECORDS
    received = receive_all(sqs_client, v2_route.queue_url, V2_RECORDS + 2)
    checkpoints = side_events(received, CHECKPOINT_SCHEMA)
    assert sorted(c["detail"]["first_seq"] for c in checkpoints) == [1, 6]
    assert all(proven(c["detail"]) == (STORE_ID, TERMINAL_ID) for c in checkpoints)


# -- size: a signed side event still fits, with the largest key a Roles Anywhere cert takes ----

RSA_BITS = 4096
LONG_DETAIL = "tampered: chain mismatch: " + "x" * 1000  # far beyond the journal's reasons


def rsa_signer(bits: int = RSA_BITS) -> Signer:
    """An RSA-4096 certificate of the CA: the largest certificate and signature a terminal's
    Roles Anywhere key makes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, STORE_ID),
                    x509.NameAttribute(NameOID.COMMON_NAME, TERMINAL_ID),
                ]
            )
        )
        .issuer_name(CA.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(CA.key, hashes.SHA256())
    )
    return Signer(certificate, key)


def test_ten_signed_side_events_fit_one_request() -> None:
    signer = rsa_signer()
    origin = SideOrigin(SOURCE, "bus", STORE_ID, TERMINAL_ID, "journal-1", signer)
    alarm = Alarm(7, "alarm-evt-1", "tampered_record", 2**40, LONG_DETAIL, "2026-01-02T03:04:05Z")
    checkpoint = Checkpoint(
        3, "checkpoint-evt-1", "journal-1", 1, 2**40, "0" * 64, "ab" * 32, "2026-01-02T03:04:06Z"
    )
    group = event_group_id(STORE_ID, TERMINAL_ID)
    sizes = []
    for event in (alarm, checkpoint):
        entry = side_entry(event, origin)
        detail = json.loads(entry["Detail"])
        assert proven(detail) == (STORE_ID, TERMINAL_ID)
        assert detail[SIGNATURE_FIELD]["scheme"] == "rsa-pkcs1v15-sha256"
        size = entry_size(entry["Source"], entry["DetailType"], entry["Detail"])
        size += system_metadata_bytes(event.event_id, group)  # v2 counts its ids too
        # what the signature adds: the certificate and the value, a few KiB at most
        assert size - len(signed_bytes(detail)) < 4 * 1024
        sizes.append(size)
    assert SIDE_EVENTS_PER_REQUEST * max(sizes) <= PUT_EVENTS_DEFAULT_MAX_BYTES
