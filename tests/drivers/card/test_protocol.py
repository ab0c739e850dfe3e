"""Message encoding: every command and response round-trips; malformed input is typed."""

from __future__ import annotations

import pytest

from drivers.card.carddata import EntryMode
from drivers.card.protocol import (
    Accepted,
    Cancel,
    EmvData,
    ErrorCode,
    ErrorResponse,
    Identify,
    IdentifyResponse,
    MagstripeData,
    ReaderState,
    StartTransaction,
    Status,
    StatusResponse,
    Verb,
    decode_command,
    decode_response,
)
from drivers.errors import ProtocolError
from drivers.sensitive import SecretStr
from tests.drivers.card.conftest import assert_no_secret

TRACK2 = ";4111111111111111=30122011000?0"  # Visa public test number


@pytest.mark.parametrize("command", [Identify(), StartTransaction(1234, "USD"), Cancel(), Status()])
def test_commands_round_trip(command: object) -> None:
    assert decode_command(command.encode()) == command  # type: ignore[attr-defined]


def test_wire_form_matches_the_documentation() -> None:
    assert StartTransaction(1234, "EUR").encode() == b"ST|1234|EUR"
    assert Cancel().encode() == b"CN"
    assert MagstripeData(SecretStr(""), SecretStr(TRACK2)).encode() == f"CD|M||{TRACK2}".encode()
    assert EmvData(EntryMode.CONTACTLESS, SecretStr("5A00")).encode() == b"CD|L|5A00"
    assert ErrorResponse(ErrorCode.CARD_REMOVED).encode() == b"ER|CARD_REMOVED"


@pytest.mark.parametrize(
    "response",
    [
        IdentifyResponse("M", "1.0", "SN1"),
        Accepted(Verb.START),
        StatusResponse(ReaderState.ARMED),
        MagstripeData(SecretStr("%B...?"), SecretStr(TRACK2)),
        EmvData(EntryMode.CHIP, SecretStr("5A0841")),
        ErrorResponse(ErrorCode.TIMEOUT),
    ],
)
def test_responses_round_trip(response: object) -> None:
    assert decode_response(response.encode()) == response  # type: ignore[attr-defined]


def test_card_data_never_in_repr() -> None:
    message = decode_response(f"CD|M||{TRACK2}".encode())
    assert_no_secret(repr(message), "4111111111111111")


@pytest.mark.parametrize(
    "payload",
    [b"", b"XX", b"ST|12", b"ST|abc|USD", b"ST|0|USD", b"ST|1|usd", b"ID|x", b"\xff"],
)
def test_bad_commands(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_command(payload)


@pytest.mark.parametrize(
    "payload",
    [
        b"CD|M||",
        b"CD|X|abc",
        b"CD|C|",
        b"OK|ZZ",
        b"SS|SLEEPING",
        b"ER|ON_FIRE",
        b"ID|a|b",
        b"4111111111111111",  # Visa public test number, as garbage
    ],
)
def test_bad_responses(payload: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_response(payload)
    assert_no_secret(str(info.value), "4111111111111111")


def test_start_transaction_validation() -> None:
    for amount, currency in ((0, "USD"), (10**12, "USD"), (1, "US"), (1, "usd"), (1, "U$D")):
        with pytest.raises(ValueError, match=r"amount|currency"):
            StartTransaction(amount, currency)
