"""The payment cryptography stand-in through the real boto3 client: DUKPT decryption, re-encryption
to the processor's key, and the service's refusals (validation, unknown keys, injected faults)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo.localaws.model import validate
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
from drivers.card import dukpt
from tests.cards import TEST_PANS
from tests.p2pe import TEST_KSNS, encrypted_block
from wire.p2pe import DukptScheme

BDK_OF = {
    DukptScheme.TDES_2KEY: (TDES_BDK_ALIAS, TEST_TDES_BDK, "TDES_2KEY", "REQUEST"),
    DukptScheme.AES_128: (AES_BDK_ALIAS, TEST_AES_BDK, "AES_128", "REQUEST"),
}
NO_CLIENT_CHECKS = Config(parameter_validation=False, retries={"total_max_attempts": 1})
TDES_BLOCK = 8


@pytest.fixture
def endpoint() -> Iterator[PaymentCryptographyEndpoint]:
    with PaymentCryptographyEndpoint() as serving:
        yield serving


def dukpt_attributes(scheme: DukptScheme, ksn: bytes | None = None) -> dict[str, Any]:
    _, _, derivation, variant = BDK_OF[scheme]
    return {
        "Dukpt": {
            "KeySerialNumber": (ksn or TEST_KSNS[scheme]).hex().upper(),
            "DukptKeyDerivationType": derivation,
            "DukptKeyVariant": variant,
            "Mode": "CBC",
        }
    }


def response_of(raised: pytest.ExceptionInfo[ClientError]) -> dict[str, Any]:
    """The parsed error, the shape's own members (fieldList, ResourceId) included."""
    return dict(raised.value.response)


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = response_of(raised)
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("scheme", list(DukptScheme))
def test_dukpt_ciphertext_decrypts_to_the_readers_track(
    endpoint: PaymentCryptographyEndpoint, scheme: DukptScheme
) -> None:
    alias, bdk, _, _ = BDK_OF[scheme]
    block = encrypted_block(TEST_PANS[0], scheme, bdk, alias)
    (track,) = block.tracks
    reply = endpoint.client().decrypt_data(
        KeyIdentifier=alias,
        CipherText=track.ciphertext.hex().upper(),
        DecryptionAttributes=dukpt_attributes(scheme),
    )
    clear = bytes.fromhex(reply["PlainText"])
    assert clear[: track.length].decode() == f";{TEST_PANS[0]}=3012201?"
    assert reply["KeyArn"] == endpoint.key(alias).arn
    assert reply["KeyCheckValue"] == endpoint.key(alias).check_value
    problems: list[str] = []
    output = endpoint.client().meta.service_model.operation_model(DECRYPT_DATA).output_shape
    validate(output, {k: v for k, v in reply.items() if k != "ResponseMetadata"}, "out", problems)
    assert problems == []


@pytest.mark.parametrize("scheme", list(DukptScheme))
def test_re_encryption_reaches_the_processor_key_and_decrypts_there(
    endpoint: PaymentCryptographyEndpoint, scheme: DukptScheme
) -> None:
    alias, bdk, _, _ = BDK_OF[scheme]
    (track,) = encrypted_block(TEST_PANS[1], scheme, bdk, alias).tracks
    iv = secrets.token_bytes(TDES_BLOCK).hex()
    client = endpoint.client()
    reply = client.re_encrypt_data(
        IncomingKeyIdentifier=endpoint.key(alias).arn,  # a key ARN names it as well
        OutgoingKeyIdentifier=PROCESSOR_ALIAS,
        CipherText=track.ciphertext.hex(),
        IncomingEncryptionAttributes=dukpt_attributes(scheme),
        OutgoingEncryptionAttributes={"Symmetric": {"Mode": "CBC", "InitializationVector": iv}},
    )
    processor = endpoint.key(PROCESSOR_ALIAS)
    assert (reply["KeyArn"], reply["KeyCheckValue"]) == (processor.arn, processor.check_value)
    assert bytes.fromhex(reply["CipherText"]) != track.ciphertext
    back = client.decrypt_data(
        KeyIdentifier=PROCESSOR_ALIAS,
        CipherText=reply["CipherText"],
        DecryptionAttributes={"Symmetric": {"Mode": "CBC", "InitializationVector": iv}},
    )
    assert TEST_PANS[1] in bytes.fromhex(back["PlainText"])[: track.length].decode()
    assert endpoint.stats.served == {RE_ENCRYPT_DATA: 1, DECRYPT_DATA: 1}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(min_size=1, max_size=64), counter=st.integers(1, 0xFFFF))
def test_any_data_and_counter_round_trip_through_the_processor_key(
    endpoint: PaymentCryptographyEndpoint, data: bytes, counter: int
) -> None:
    scheme = DukptScheme.AES_128
    alias, bdk, _, _ = BDK_OF[scheme]
    ksn = TEST_KSNS[scheme][:-4] + counter.to_bytes(4, "big")
    ciphertext = dukpt.encrypt(bdk, ksn, scheme, data)
    reply = endpoint.client().re_encrypt_data(
        IncomingKeyIdentifier=alias,
        OutgoingKeyIdentifier=PROCESSOR_ALIAS,
        CipherText=ciphertext.hex(),
        IncomingEncryptionAttributes=dukpt_attributes(scheme, ksn),
        OutgoingEncryptionAttributes={"Symmetric": {"Mode": "CBC"}},
    )
    processor = endpoint.key(PROCESSOR_ALIAS)
    clear = crypt(
        processor.algorithm,
        processor.material,
        "CBC",
        bytes(TDES_BLOCK),
        bytes.fromhex(reply["CipherText"]),
        encrypt=False,
    )
    assert clear[: len(data)] == data


# What a client without its own checks could send, and what the service says to it.
BAD_DECRYPTS: dict[str, dict[str, Any]] = {
    "attributes missing": {"KeyIdentifier": TDES_BDK_ALIAS, "CipherText": "00" * 8},
    "two union members": {
        "KeyIdentifier": TDES_BDK_ALIAS,
        "CipherText": "00" * 8,
        "DecryptionAttributes": {
            **dukpt_attributes(DukptScheme.TDES_2KEY),
            "Symmetric": {"Mode": "CBC"},
        },
    },
    "mode not in the enum": {
        "KeyIdentifier": TDES_BDK_ALIAS,
        "CipherText": "00" * 8,
        "DecryptionAttributes": {"Dukpt": {"KeySerialNumber": "FF" * 10, "Mode": "GCM"}},
    },
    "KSN not hex": {
        "KeyIdentifier": TDES_BDK_ALIAS,
        "CipherText": "00" * 8,
        "DecryptionAttributes": {"Dukpt": {"KeySerialNumber": "XY" * 10}},
    },
    "ciphertext not hex pairs": {
        "KeyIdentifier": TDES_BDK_ALIAS,
        "CipherText": "abc",
        "DecryptionAttributes": dukpt_attributes(DukptScheme.TDES_2KEY),
    },
    "not whole blocks": {
        "KeyIdentifier": TDES_BDK_ALIAS,
        "CipherText": "00" * 7,
        "DecryptionAttributes": dukpt_attributes(DukptScheme.TDES_2KEY),
    },
    "an AES KSN for a TDES BDK": {
        "KeyIdentifier": TDES_BDK_ALIAS,
        "CipherText": "00" * 8,
        "DecryptionAttributes": dukpt_attributes(DukptScheme.AES_128),
    },
    "TDES has no both-ways data key": {
        "KeyIdentifier": TDES_BDK_ALIAS,
        "CipherText": "00" * 8,
        "DecryptionAttributes": {
            "Dukpt": {
                **dukpt_attributes(DukptScheme.TDES_2KEY)["Dukpt"],
                "DukptKeyVariant": "BIDIRECTIONAL",
            }
        },
    },
    "key identifier not a key": {
        "KeyIdentifier": "key-1234",
        "CipherText": "00" * 8,
        "DecryptionAttributes": dukpt_attributes(DukptScheme.TDES_2KEY),
    },
}


@pytest.mark.parametrize("request_", BAD_DECRYPTS.values(), ids=list(BAD_DECRYPTS))
def test_bad_shapes_are_validation_exceptions_with_the_fields_named(
    endpoint: PaymentCryptographyEndpoint, request_: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as raised:
        endpoint.client(NO_CLIENT_CHECKS).decrypt_data(**request_)
    assert error_of(raised) == ("ValidationException", 400)
    assert response_of(raised)["fieldList"]
    assert endpoint.stats.served == {}


def test_re_encryption_to_a_bdk_or_with_a_wrapped_key_is_refused(
    endpoint: PaymentCryptographyEndpoint,
) -> None:
    (track,) = encrypted_block(
        TEST_PANS[0], DukptScheme.TDES_2KEY, TEST_TDES_BDK, TDES_BDK_ALIAS
    ).tracks
    request = {
        "IncomingKeyIdentifier": TDES_BDK_ALIAS,
        "OutgoingKeyIdentifier": AES_BDK_ALIAS,
        "CipherText": track.ciphertext.hex(),
        "IncomingEncryptionAttributes": dukpt_attributes(DukptScheme.TDES_2KEY),
        "OutgoingEncryptionAttributes": {"Symmetric": {"Mode": "CBC"}},
    }
    client = endpoint.client(NO_CLIENT_CHECKS)
    with pytest.raises(ClientError) as raised:
        client.re_encrypt_data(**request)
    assert error_of(raised) == ("ValidationException", 400)
    wrapped = {"WrappedKeyMaterial": {"Tr31KeyBlock": "D" * 56}}
    with pytest.raises(ClientError) as raised:
        client.re_encrypt_data(
            **{**request, "OutgoingKeyIdentifier": PROCESSOR_ALIAS}, OutgoingWrappedKey=wrapped
        )
    assert error_of(raised) == ("ValidationException", 400)


@pytest.mark.parametrize(
    "identifier",
    [
        "alias/no-such-bdk",
        "arn:aws:payment-cryptography:us-east-1:123456789012:key/abcdefabcdef0123",
    ],
)
def test_an_unknown_key_is_resource_not_found(
    endpoint: PaymentCryptographyEndpoint, identifier: str
) -> None:
    with pytest.raises(ClientError) as raised:
        endpoint.client().decrypt_data(
            KeyIdentifier=identifier,
            CipherText="00" * 8,
            DecryptionAttributes=dukpt_attributes(DukptScheme.TDES_2KEY),
        )
    assert error_of(raised) == ("ResourceNotFoundException", 404)
    assert response_of(raised)["ResourceId"] == identifier


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 429),
        ("AccessDeniedException", 403),
        ("InternalServerException", 500),
    ],
)
def test_injected_faults_come_back_as_the_service_sends_them(
    endpoint: PaymentCryptographyEndpoint, code: str, status: int
) -> None:
    endpoint.fail_next(code)
    client = endpoint.client(Config(retries={"total_max_attempts": 1}))
    call = {
        "KeyIdentifier": TDES_BDK_ALIAS,
        "CipherText": "00" * 8,
        "DecryptionAttributes": dukpt_attributes(DukptScheme.TDES_2KEY),
    }
    with pytest.raises(ClientError) as raised:
        client.decrypt_data(**call)
    assert error_of(raised) == (code, status)
    client.decrypt_data(**call)  # one request only
    assert endpoint.stats.requests == {DECRYPT_DATA: 2}


def test_an_unsigned_request_is_denied(endpoint: PaymentCryptographyEndpoint) -> None:
    with pytest.raises(ClientError) as raised:
        endpoint.client(Config(signature_version=UNSIGNED)).decrypt_data(
            KeyIdentifier=TDES_BDK_ALIAS,
            CipherText="00" * 8,
            DecryptionAttributes=dukpt_attributes(DukptScheme.TDES_2KEY),
        )
    assert error_of(raised) == ("AccessDeniedException", 403)
