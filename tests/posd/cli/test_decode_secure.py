"""`posd decode secure HEX`: a secure reader's swipe shows its masked fields, KSN, scheme,
format and encrypted track lengths only; anything that is not a swipe is a one-line error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card.deck import TEST_PANS, default_deck
from drivers.card.secure_swipes import (
    SIM_DEVICE_SERIAL,
    TEST_BDK,
    EncryptingHead,
    ksn_at,
    magstripe_cards,
    magstripe_tracks,
)
from posd.cli.main import main
from wire.p2pe import DukptScheme

PANS = [pan for _, pan in TEST_PANS]
CARDS = magstripe_cards(default_deck())


def swipe_hex(scheme: DukptScheme, index: int = 0, tracks: bool = True) -> str:
    head = EncryptingHead(TEST_BDK[scheme], scheme, ksn_at(scheme, 1), SIM_DEVICE_SERIAL)
    return head.swipe(magstripe_tracks(CARDS[index]) if tracks else {}).hex()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["decode", "secure", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("scheme", list(DukptScheme))
@pytest.mark.parametrize("index", range(len(CARDS)))
def test_a_swipe_shows_masked_fields_and_encryption_only(
    capsys: pytest.CaptureFixture[str], scheme: DukptScheme, index: int
) -> None:
    code, out, err = run(capsys, swipe_hex(scheme, index), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["kind"] == "secure" and result["card_data"] == "p2pe"
    assert result["scheme"] == scheme.value and result["format"] == "idtech-enhanced"
    assert len(bytes.fromhex(result["ksn"].replace(":", ""))) == scheme.ksn_bytes
    assert result["device_serial"] == SIM_DEVICE_SERIAL
    assert {t["track"] for t in result["encrypted_tracks"]} <= {1, 2, 3}
    assert all(t["length"] > 0 for t in result["encrypted_tracks"])
    assert result["masked_pan"].count("*") >= 4
    assert "ciphertext" not in out
    code, text, _ = run(capsys, swipe_hex(scheme, index))
    assert code == 0 and "ksn" in text and "masked_pan" in text
    assert not [pan for pan in PANS if pan in out + text + err]


def test_a_swipe_the_reader_could_not_read_is_a_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, swipe_hex(DukptScheme.TDES_2KEY, tracks=False), "--json")
    assert code == 1
    assert json.loads(out)["problems"][0]["code"] == "no_track_decoded"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("", "no data"),
        ("zz", "not hex"),
        ("020304", "secure swipe"),
        ("0a0b0c0d", "secure swipe"),
    ],
)
def test_what_is_not_a_swipe_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], data: str, fragment: str
) -> None:
    code, _, err = run(capsys, data)
    assert code == 2
    assert err.startswith("posd: error: ") and fragment in err
    assert "Traceback" not in err and err.count("\n") == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_end_in_an_answer_not_a_traceback(data: bytes) -> None:
    code = main(["decode", "secure", data.hex(), "--json"])
    assert code in (0, 1, 2)
