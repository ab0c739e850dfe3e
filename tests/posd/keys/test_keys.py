"""Data keys through a real KMS emulator over HTTP: generation, unwrap, rotation, offline path."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from cloud.kms import KmsUnwrapper
from demo.localaws.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION, LocalAws
from posd.errors import KeyProviderError
from posd.journal import Journal
from posd.keys.base import DataKey
from posd.keys.kms import KmsKeySource, KmsRsaOfflineSource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from tests.cards import STORE_ID, TERMINAL_ID, VISA_TEST_PAN, payment_meta, payment_secret
from tests.sync.faultproxy import FaultProxy
from wire.envelope import open_sealed
from wire.errors import IdentityNotBound
from wire.keys import WrappedKey

CONTEXT = {"store_id": STORE_ID, "terminal_id": TERMINAL_ID}
READY_TIMEOUT = 10.0


def unreachable_kms() -> Any:
    """A KMS client whose endpoint is a closed loopback port: every call fails fast."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return kms_at(f"http://127.0.0.1:{port}")


def kms_at(url: str) -> Any:
    """A KMS client of `url` that fails fast when nothing answers there."""
    return boto3.client(  # type: ignore[call-overload]
        "kms",
        region_name=EMULATOR_REGION,
        endpoint_url=url,
        config=BotoConfig(connect_timeout=0.5, read_timeout=0.5, retries={"total_max_attempts": 1}),
        **EMULATOR_CREDENTIALS,
    )


@pytest.fixture
def rsa_key_arn(kms_client: Any) -> str:
    reply = kms_client.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    return str(reply["KeyMetadata"]["Arn"])


def test_kms_data_key_unwraps_only_with_its_context(kms_client: Any, kms_key_arn: str) -> None:
    key = KmsKeySource(kms_client, kms_key_arn, CONTEXT).new_data_key()
    assert len(key.plaintext) == 32
    assert key.plaintext not in key.wrapped.wrapped_key
    assert key.wrapped.key_arn == kms_key_arn
    assert key.plaintext.hex() not in repr(key) and key.plaintext.hex() not in str(key)
    unwrapper = KmsUnwrapper(kms_client)
    assert unwrapper.unwrap(key.wrapped) == key.plaintext

    other = WrappedKey(
        **{**key.wrapped.__dict__, "encryption_context": {**CONTEXT, "terminal_id": "x"}}
    )
    # KMS refuses it under another context: the record does not bind that identity (never
    # worth a retry, unlike KMS being unreachable)
    with pytest.raises(IdentityNotBound, match="KMS refuses data key"):
        unwrapper.unwrap(other)


def test_unknown_kms_key_is_a_clear_error(kms_client: Any) -> None:
    source = KmsKeySource(kms_client, "alias/does-not-exist", CONTEXT)
    with pytest.raises(KeyProviderError, match="GenerateDataKey failed"):
        source.new_data_key()


def test_rotation_by_record_count(kms_client: Any, kms_key_arn: str) -> None:
    source = KmsKeySource(kms_client, kms_key_arn, CONTEXT)
    with RotatingKeyProvider(source, rotate_after_records=3) as provider:
        used: list[str] = []
        for _ in range(9):
            assert provider.wait_ready(READY_TIMEOUT)
            used.append(provider.key_for_record().key_id)
    assert [used.count(k) for k in dict.fromkeys(used)] == [3, 3, 3]


def test_rotation_by_age(kms_client: Any, kms_key_arn: str) -> None:
    now = [1000.0]
    source = KmsKeySource(kms_client, kms_key_arn, CONTEXT)
    provider = RotatingKeyProvider(
        source, rotate_after_records=10**6, rotate_after_seconds=60, clock=lambda: now[0]
    )
    with provider:
        assert provider.wait_ready(READY_TIMEOUT)
        first = provider.key_for_record()
        assert provider.key_for_record() is first
        now[0] += 61
        assert provider.wait_ready(READY_TIMEOUT)
        assert provider.key_for_record() is not first


def test_a_kms_key_is_retired_on_time_while_kms_is_down(
    tmp_path: Path, aws_endpoint: str, kms_client: Any, kms_key_arn: str, rsa_key_arn: str
) -> None:
    """KMS gone for a weekend (tests/rehearsal): the KMS key in use when it went is not used
    past `rotate_after_seconds`; the offline key takes over, with no network."""
    cache = tmp_path / "offline-public-key.json"
    KmsRsaOfflineSource(kms_client, rsa_key_arn, cache).refresh_public_key()
    proxy = FaultProxy(aws_endpoint)
    through = kms_at(proxy.url)
    now = [1000.0]
    provider = RotatingKeyProvider(
        KmsKeySource(through, kms_key_arn, CONTEXT),
        KmsRsaOfflineSource(through, rsa_key_arn, cache),
        rotate_after_records=10**6,
        rotate_after_seconds=60,
        clock=lambda: now[0],
    )
    try:
        with provider:
            assert provider.wait_ready(READY_TIMEOUT)
            proxy.cut()
            first = provider.key_for_record()
            assert first.wrapped.provider == "kms"
            now[0] += 30
            assert provider.key_for_record() is first
            now[0] += 31
            later = provider.key_for_record()
            assert later.wrapped.provider == "kms-rsa"
    finally:
        proxy.down()


def test_capture_goes_on_without_kms_and_decrypts_later(
    tmp_path: Path, local_aws: LocalAws, kms_client: Any, kms_key_arn: str, rsa_key_arn: str
) -> None:
    cache = tmp_path / "offline-public-key.json"
    # Once online: the offline public key is fetched and cached.
    KmsRsaOfflineSource(kms_client, rsa_key_arn, cache).refresh_public_key()

    # "Restart" with KMS unreachable: nothing but the cache on disk.
    down = unreachable_kms()
    provider = RotatingKeyProvider(
        KmsKeySource(down, kms_key_arn, CONTEXT),
        KmsRsaOfflineSource(down, rsa_key_arn, cache),
        rotate_after_records=2,
    )
    state_dir = tmp_path / "state"
    with provider, Journal.open(state_dir) as journal:
        recorder = Recorder(journal, provider, STORE_ID, TERMINAL_ID)
        secrets = {}
        for index in range(5):
            record = recorder.record(
                "card_payment", payment_meta(VISA_TEST_PAN), payment_secret(VISA_TEST_PAN)
            )
            secrets[record.event_id] = payment_secret(VISA_TEST_PAN)
            assert record.data_key.provider == "kms-rsa"
        assert provider.status()["primary_failures"] >= 1

    # Later, the backend (with kms:Decrypt) reads them. moto's Decrypt cannot take RSA
    # ciphertext made outside it, so the emulator's own private key stands in for it.
    unwrapper = KmsUnwrapper(kms_client, {rsa_key_arn: local_aws.rsa_private_key(rsa_key_arn)})
    with Journal.open(state_dir) as journal:
        records = list(journal.records())
    assert len(records) == 5
    assert len({r.data_key.key_id for r in records}) == 3  # rotated every 2 records, offline too
    for record in records:
        key = unwrapper.unwrap(record.data_key)
        assert (
            open_sealed(key, record.nonce, record.ciphertext, record.aad)
            == secrets[record.event_id]
        )


def test_offline_without_cached_public_key_refuses_clearly(
    tmp_path: Path, kms_key_arn: str
) -> None:
    down = unreachable_kms()
    provider = RotatingKeyProvider(
        KmsKeySource(down, kms_key_arn, CONTEXT),
        KmsRsaOfflineSource(down, "alias/offline", tmp_path / "missing.json"),
    )
    with provider, pytest.raises(KeyProviderError, match="no usable cached offline public key"):
        provider.key_for_record()


def test_no_fallback_and_no_kms_refuses_clearly(kms_key_arn: str) -> None:
    provider = RotatingKeyProvider(KmsKeySource(unreachable_kms(), kms_key_arn, CONTEXT))
    with provider, pytest.raises(KeyProviderError, match="no data key available"):
        provider.key_for_record()


class SwitchableSource:
    """Stands in for a network that comes back: delegates to a dead or a live KMS source."""

    name = "kms"

    def __init__(self, dead: KmsKeySource, live: KmsKeySource) -> None:
        self.online = False
        self._dead, self._live = dead, live

    def new_data_key(self) -> DataKey:
        return (self._live if self.online else self._dead).new_data_key()


def test_returns_to_kms_when_it_is_back(
    tmp_path: Path, kms_client: Any, kms_key_arn: str, rsa_key_arn: str
) -> None:
    cache = tmp_path / "offline.json"
    KmsRsaOfflineSource(kms_client, rsa_key_arn, cache).refresh_public_key()
    switch = SwitchableSource(
        KmsKeySource(unreachable_kms(), kms_key_arn, CONTEXT),
        KmsKeySource(kms_client, kms_key_arn, CONTEXT),
    )
    provider = RotatingKeyProvider(
        switch,
        KmsRsaOfflineSource(None, rsa_key_arn, cache),
        retry_initial_seconds=0.05,
        retry_max_seconds=0.1,
    )
    with provider:
        assert provider.key_for_record().wrapped.provider == "kms-rsa"
        switch.online = True
        assert provider.wait_ready(READY_TIMEOUT)
        assert provider.key_for_record().wrapped.provider == "kms"


def test_offline_key_cache_creates_its_directory(
    tmp_path: Path, kms_client: Any, rsa_key_arn: str
) -> None:
    cache = tmp_path / "not-yet" / "offline.json"
    source = KmsRsaOfflineSource(kms_client, rsa_key_arn, cache)
    source.refresh_public_key()
    assert source.new_data_key().wrapped.provider == "kms-rsa"  # made from the cached key
    assert oct(cache.stat().st_mode & 0o777) == "0o600"


def test_failing_hook_is_retried_and_never_stops_prefetch(
    kms_client: Any, kms_key_arn: str
) -> None:
    calls: list[int] = []

    def flaky_hook() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise KeyProviderError("GetPublicKey failed once")

    provider = RotatingKeyProvider(
        KmsKeySource(kms_client, kms_key_arn, CONTEXT),
        rotate_after_records=1,
        after_primary_success=[flaky_hook],
    )
    with provider:
        for _ in range(4):
            assert provider.wait_ready(READY_TIMEOUT)
            assert provider.key_for_record().wrapped.provider == "kms"
    assert len(calls) == 2  # failed, retried after the next success, then done
