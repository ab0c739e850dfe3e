"""`posd decode` and `posd sim card-reader`: masked output, problems, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.card.brands import Brand
from drivers.card.deck import TEST_PANS, emv_tlv
from drivers.card.results import CardRead
from drivers.card.serial_reader import SerialCardReader
from drivers.card.tracks import build_track1, build_track2
from posd.cli.main import main
from tests.cards import MASTERCARD_TEST_PAN
from tests.drivers.card.conftest import READER_OPTIONS, WAIT_LIMIT_S, assert_no_secret
from tests.repo import REPO_ROOT

BRAND_IDS = [f"{brand.value}-{len(pan)}" for brand, pan in TEST_PANS]
REPO = REPO_ROOT


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("brand", "pan"), TEST_PANS, ids=BRAND_IDS)
def test_decode_track_every_brand(
    capsys: pytest.CaptureFixture[str], brand: Brand, pan: str
) -> None:
    swipe = build_track1(pan, "TEST/CARD", "3012", "201", "99") + build_track2(pan, "3012", "201")
    code, out, err = run_cli(capsys, "decode", "track", swipe, "--json")
    assert code == 0 and err == ""
    result = json.loads(out)
    assert result["brand"] == brand.value
    assert result["masked_pan"] == pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    assert result["luhn_valid"] is True and result["valid"] is True
    assert result["expiry"] == "2030-12" and result["service_code"] == "201"
    assert [t["lrc"] for t in result["tracks"]] == ["ok", "ok"]
    assert result["cardholder_name"] == "T***/C***"
    assert_no_secret(out, pan)


@pytest.mark.parametrize(("brand", "pan"), TEST_PANS, ids=BRAND_IDS)
def test_decode_tlv_every_brand(capsys: pytest.CaptureFixture[str], brand: Brand, pan: str) -> None:
    code, out, _ = run_cli(capsys, "decode", "tlv", emv_tlv(pan).hex(), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["brand"] == brand.value and result["valid"] is True
    tags = [o["tag"] for o in result["objects"]]
    assert tags == ["77", "9F27", "9F36", "9F26", "70", "5A", "5F24", "57", "5F20"]
    assert [o["depth"] for o in result["objects"]][:5] == [0, 1, 1, 1, 1]
    assert_no_secret(out, pan)


def test_decode_human_output_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    pan = MASTERCARD_TEST_PAN
    code, out, _ = run_cli(capsys, "decode", "tlv", emv_tlv(pan).hex())
    assert code == 0
    assert "555555******4444" in out and "problems: none" in out
    assert "Application Primary Account Number" in out
    assert_no_secret(out, pan)
    code, out, _ = run_cli(capsys, "decode", "track", build_track2(pan, "3012", "201"))
    assert code == 0 and "mastercard" in out
    assert_no_secret(out, pan)


def test_problems_are_listed_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    pan = "4111111111111112"  # Visa test number with a broken check digit
    good = build_track2(pan, "3012", "201")
    bad_lrc = good[:-1] + ("0" if good[-1] != "0" else "1")
    code, out, _ = run_cli(capsys, "decode", "track", bad_lrc, "--json")
    assert code == 1
    result = json.loads(out)
    assert {p["code"] for p in result["problems"]} == {"pan_luhn", "track_lrc"}
    assert result["valid"] is False and result["luhn_valid"] is False
    assert_no_secret(out, pan)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["decode", "track", "not a track"], "cannot parse track data"),
        (["decode", "track", ";4111111111111111D3012201?"], "position 17 is not allowed"),
        (["decode", "track", ";4111111111111111?"], "missing '=' field separator"),
        (["decode", "track", "%B4111111111111111^X^3012201?"], "name must be 2-26"),
        (["decode", "tlv", "5A084111"], "TLV error at byte 0"),
        (["decode", "tlv", "5A0"], "odd number of hex digits"),
        (["decode", "tlv", "zz"], "not a hex digit"),
        (["decode", "tlv", "9F0206000000001234"], ""),  # valid TLV without a card: exit 0
    ],
)
def test_malformed_input_is_a_clear_one_line_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, out, err = run_cli(capsys, *argv)
    if not fragment:
        assert code == 0 and "Amount, Authorised" in out
        return
    assert code == 2
    assert err.startswith("posd: error: ") and fragment in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert_no_secret(err, "4111111111111111")


def test_malformed_input_with_json_prints_one_json_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "decode", "tlv", "5A08", "--json")
    assert code == 2
    assert json.loads(out)["error"] == "bad_input"


def test_sim_card_reader_runs_until_sigterm() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "posd", "sim", "card-reader", "--json", "--present-after", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], WAIT_LIMIT_S)
        assert ready, "the simulator did not print its port"
        line = process.stdout.readline()
        info = json.loads(line)
        assert info["device"] == "card-reader" and info["deck_cards"] == 3 * len(TEST_PANS)
        with SerialCardReader(info["port"], **READER_OPTIONS) as reader:
            result = reader.read_card(100, "USD", timeout=3.0)
            assert isinstance(result, CardRead) and result.card.valid
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT_LIMIT_S) == 0
        assert not Path(info["port"]).exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=WAIT_LIMIT_S)
