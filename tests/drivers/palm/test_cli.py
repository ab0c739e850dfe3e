"""`posd devices` and `posd devices test` as a technician runs them: a real subprocess with a
temporary config, simulated devices behind the real driver code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig, simulated_card_reader, simulated_palm
from tests.drivers.palm.conftest import ALICE_TOKEN
from tests.repo import REPO_ROOT

REPO = REPO_ROOT
DEVICE_ERROR_EXIT = 3
USAGE_EXIT = 2

ABSENT_REAL_PALM = {"driver": "amazon-one", "vendor_id": 0xFFFE, "product_id": 0x0001}


def write_config(
    tmp_path: Path, present: str | None = "alice", palm: dict[str, Any] | None = None
) -> Path:
    """The simulated palm scanner knows alice and bob (`palm` replaces it)."""
    if palm is None:
        identities = {"alice": ALICE_TOKEN, "bob": "badge-000417"}
        palm = simulated_palm(identities, present=present, response_timeout_s=0.5)
    return DevConfig(
        store_id="store-test",
        terminal_id="lane-01",
        devices={"card_reader": simulated_card_reader(), "palm_scanner": palm},
    ).write(tmp_path / "posd.toml")


def posd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posd", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_devices_test_reports_a_palm_match_as_json(tmp_path: Path) -> None:
    done = posd(
        "devices", "test", "palm_scanner", "--json", "--config", str(write_config(tmp_path))
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True
    assert result["class"] == "palm-scanner"
    assert result["outcome"] == "match"
    assert result["credential"] == "****************4b8a"
    assert result["confidence"] == pytest.approx(0.99)
    assert result["info"]["serial_number"] == "SIM-PALM-0001"
    assert ALICE_TOKEN not in done.stdout + done.stderr


def test_json_flag_may_come_before_the_action(tmp_path: Path) -> None:
    config = str(write_config(tmp_path))
    done = posd("devices", "--json", "--config", config, "test", "palm_scanner")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "match"


def test_human_output_masks_the_credential(tmp_path: Path) -> None:
    done = posd("devices", "test", "palm_scanner", "--config", str(write_config(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "outcome:" in done.stdout and "match" in done.stdout
    assert "****************4b8a" in done.stdout
    assert ALICE_TOKEN not in done.stdout + done.stderr


@pytest.mark.parametrize(("present", "outcome"), [("mallory", "no_match"), (None, "timeout")])
def test_other_outcomes_are_a_successful_round_trip(
    tmp_path: Path, present: str | None, outcome: str
) -> None:
    config = write_config(tmp_path, present=present)
    done = posd(
        "devices", "test", "palm_scanner", "--json", "--timeout", "0.3", "--config", str(config)
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == outcome
    assert "credential" not in result


def test_devices_lists_both_classes_with_state_and_info(tmp_path: Path) -> None:
    done = posd("devices", "--json", "--config", str(write_config(tmp_path)))
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)["devices"]}
    assert rows["palm_scanner"]["state"] == "connected"
    assert rows["palm_scanner"]["class"] == "palm-scanner"
    assert rows["palm_scanner"]["info"]["firmware"] == "sim-1.0.0"
    assert rows["palm_scanner"]["info"]["port"].startswith("usb:")
    assert rows["card_reader"]["class"] == "card-reader"
    assert rows["card_reader"]["state"] == "connected"


def test_devices_table_lists_each_device(tmp_path: Path) -> None:
    done = posd("devices", "--config", str(write_config(tmp_path)))
    assert done.returncode == 0, done.stderr
    # eight columns do not fit 80: one block of `HEADER: value` lines per device
    blocks = [block.split() for block in done.stdout.split("\n\n")]
    palm = next(block for block in blocks if block[:2] == ["NAME:", "palm_scanner"])
    assert palm[2:8] == ["CLASS:", "palm-scanner", "DRIVER:", "simulated", "STATE:", "connected"]


def test_card_reader_round_trip_is_a_read(tmp_path: Path) -> None:
    done = posd("devices", "test", "card_reader", "--json", "--config", str(write_config(tmp_path)))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["class"], result["outcome"], result["state"]) == (
        "card-reader",
        "card_read",
        "IDLE",
    )
    assert result["info"]["model"]


def test_absent_real_scanner_is_a_clear_device_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, palm=ABSENT_REAL_PALM)
    done = posd("devices", "test", "palm_scanner", "--json", "--config", str(config))
    assert done.returncode == DEVICE_ERROR_EXIT
    error = json.loads(done.stdout)
    assert error["error"] == "device_error"
    # No libusb: driver_unavailable; libusb but no such device: device_init.
    assert error["message"].startswith(
        ("palm_scanner: driver_unavailable", "palm_scanner: device_init")
    )
    assert "Traceback" not in done.stderr


def test_unknown_device_name_is_a_usage_error(tmp_path: Path) -> None:
    done = posd("devices", "test", "printer", "--config", str(write_config(tmp_path)))
    assert done.returncode == USAGE_EXIT
    assert "no device named 'printer'" in done.stderr
    assert "palm_scanner" in done.stderr


def test_bad_driver_option_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "colour = 'blue'\n")
    done = posd("devices", "test", "palm_scanner", "--json", "--config", str(config))
    assert done.returncode == USAGE_EXIT
    error = json.loads(done.stdout)
    assert error["error"] == "config_invalid"
    assert "devices.palm_scanner" in error["message"] and "colour" in error["message"]
    assert "Traceback" not in done.stderr
