"""`posd devices` and `posd devices test` on an encrypting reader: it says it encrypts, shows
its KSN counter use, flags a nearly exhausted one with the fix, and shows masked data only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig, simulated_card_reader
from drivers.card.deck import TEST_PANS
from posd.cli.main import main
from posd.reader_encryption import REINJECT_FIX

KEY_REF = "alias/posd-test-bdk"
P2PE = {"card_data": "p2pe", "p2pe_key_ref": KEY_REF, "currencies": ["EUR"]}
NEARLY_SPENT = 0.95
FRESH = 0.001
NEAR_END = 0x1F0000  # a TDES KSN counter past 99 % of the usable ones

pytestmark = pytest.mark.usefixtures("fake_secure_msr")


def secure_lane(tmp_path: Path, counter_used: float) -> Path:
    reader = {
        "driver": "simulated-secure-msr",
        "counter_used": counter_used,
        "vendor_id": 0x0ACD,
        "product_id": 0x2010,
    }
    return DevConfig(
        "s1",
        "t1",
        api={"socket": "api.sock"},
        payments=P2PE,
        devices={"card_reader": reader},
    ).write(tmp_path / "posd.toml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def listing(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, Any]:
    code, out = run(capsys, "devices", "--config", str(config), "--json")
    assert code == 0
    return dict(json.loads(out))


def test_an_encrypting_reader_says_so_with_its_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = listing(capsys, secure_lane(tmp_path, FRESH))
    row = result["devices"][0]
    assert row["usb_id"] == "0acd:2010"
    assert row["info"]["serial_number"] and row["info"]["firmware"]
    assert row["p2pe"]["encrypting"] is True
    assert row["p2pe"]["scheme"] == "tdes-2key"
    assert row["p2pe"]["nearly_exhausted"] is False
    assert result["warnings"] == []


def test_a_nearly_exhausted_reader_is_flagged_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = secure_lane(tmp_path, NEARLY_SPENT)
    result = listing(capsys, config)
    assert result["devices"][0]["p2pe"]["nearly_exhausted"] is True
    assert len(result["warnings"]) == 1 and "95% used" in result["warnings"][0]
    code, text = run(capsys, "devices", "--config", str(config))
    assert code == 0
    assert "NEARLY EXHAUSTED" in text and "re-injected" in " ".join(text.split())
    assert result["fix"] == REINJECT_FIX


def test_a_clear_reader_says_it_does_not_encrypt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = DevConfig("s1", "t1", api={"socket": "api.sock"}).write(tmp_path / "posd.toml")
    row = listing(capsys, config)["devices"][0]
    assert row["driver"] == simulated_card_reader()["driver"]
    assert row["p2pe"]["encrypting"] is False
    assert row["usb_id"] is None


def test_devices_test_on_an_encrypting_reader_shows_masked_fields_and_ksn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = secure_lane(tmp_path, FRESH)
    code, out = run(capsys, "devices", "test", "card_reader", "--config", str(config), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["outcome"] == "card_read"
    assert result["card_data"] == "p2pe"
    assert result["masked_pan"].count("*") >= 4
    assert result["ksn"] and result["scheme"] == "tdes-2key"
    assert result["encrypted_tracks"] == [{"track": 2, "length": 37}]
    assert result["p2pe"]["encrypting"] is True
    code, text = run(capsys, "devices", "test", "card_reader", "--config", str(config))
    assert code == 0 and "ksn" in text
    assert not any(pan in out + text for _, pan in TEST_PANS)


def test_the_simulated_secure_reader_near_its_last_key_is_flagged_after_a_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merged simulator (not the stand-in): it knows its counter from its reads."""
    from drivers import registry
    from drivers.registry import CARD_READER

    monkeypatch.setitem(
        registry._TABLE,
        (CARD_READER, "simulated-secure-msr"),
        "drivers.card.secure_msr_sim:SimulatedSecureMsrReader",
    )
    config = DevConfig(
        "s1",
        "t1",
        api={"socket": "api.sock"},
        payments=P2PE,
        devices={"card_reader": {"driver": "simulated-secure-msr", "first_counter": NEAR_END}},
    ).write(tmp_path / "posd.toml")
    code, out = run(capsys, "devices", "test", "card_reader", "--config", str(config), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["outcome"] == "card_read" and result["card_data"] == "p2pe"
    assert result["p2pe"]["nearly_exhausted"] is True
    assert result["p2pe"]["last_ksn"] == result["ksn"]
    assert not any(pan in out for _, pan in TEST_PANS)
