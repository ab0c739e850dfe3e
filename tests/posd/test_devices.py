"""The device loader (`posd.devices`): config -> a typed driver, options checked once.

Every device here is built from a parsed config, the way the CLI, the demo and the daemon
build theirs, and the simulated ones are opened for real (a pty, the simulated USB bus).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from drivers.card.reader import CardReader
from drivers.card.results import CardRead
from drivers.card.simulated_reader import SimulatedCardReader
from drivers.palm.identity import Matched
from drivers.palm.scanner import PalmScanner
from drivers.palm.simulated import SimulatedPalmScanner
from posd.config import parse_config
from posd.devices import build_card_reader, build_device, build_palm_scanner
from posd.errors import ConfigError
from tests.repo import REPO_ROOT

CONFIG_PATH = Path("posd.toml")
REPO = REPO_ROOT
TOKEN = "tok-7f3a9c2e51d04b8a"


def config_with(devices: dict[str, Any]) -> Any:
    document = {
        # development: these tests are about devices, not the production [identity]
        "terminal": {"store_id": "s1", "terminal_id": "t1", "mode": "development"},
        "keys": {"kms_key_id": "alias/k"},
        "payments": {"currencies": ["EUR"]},
        "devices": devices,
    }
    return parse_config(document, CONFIG_PATH)


SIMULATED = {
    "card_reader": {"driver": "simulated", "response_timeout_s": 1, "backoff_max_s": 0.5},
    "palm_scanner": {"driver": "simulated", "identities": {"a": TOKEN}, "present": "a"},
}


def test_typed_loaders_build_the_configured_drivers_with_their_options() -> None:
    config = config_with(SIMULATED)
    reader = build_card_reader(config)
    scanner = build_palm_scanner(config)
    assert isinstance(reader, SimulatedCardReader) and isinstance(scanner, SimulatedPalmScanner)
    with reader, scanner:
        read = reader.read_card(100, "EUR", timeout=3.0)
        assert isinstance(read, CardRead) and read.card.valid
        match = scanner.identify(2.0)
        assert isinstance(match, Matched) and match.credential.reveal() == TOKEN


def test_build_by_config_name_gives_the_device_class_of_that_name() -> None:
    config = config_with(SIMULATED)
    assert isinstance(build_device(config, "card_reader"), CardReader)
    assert isinstance(build_device(config, "palm_scanner"), PalmScanner)


@pytest.mark.parametrize(
    ("devices", "key", "expected"),
    [
        # Checked at config load: unknown, missing, mistyped.
        ({"card_reader": {"driver": "serial"}}, "devices.card_reader.port", "required"),
        (
            {"palm_scanner": {"driver": "amazon-one", "vendor_id": 1}},
            "devices.palm_scanner.product_id",
            "required",
        ),
        (
            {"card_reader": {"driver": "serial", "port": "x", "response_timeout": 2}},
            "devices.card_reader.response_timeout",
            "unknown option",
        ),
    ],
)
def test_bad_options_fail_at_config_load_naming_the_key(
    devices: dict[str, Any], key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_with(devices)
    assert caught.value.key == key and expected in caught.value.expected


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"response_timeout_s": 0}, "devices.card_reader.response_timeout_s"),
        ({"backoff_initial_s": -1}, "devices.card_reader.backoff_initial_s"),
        ({"max_resends": -1}, "devices.card_reader.max_resends"),
    ],
)
def test_values_the_driver_refuses_are_config_errors_naming_the_key(
    options: dict[str, Any], key: str
) -> None:
    config = config_with({"card_reader": {"driver": "simulated", **options}})
    with pytest.raises(ConfigError) as caught:
        build_card_reader(config)
    assert caught.value.key == key
    assert caught.value.path == str(CONFIG_PATH)


def test_palm_option_out_of_range_names_the_key() -> None:
    config = config_with({"palm_scanner": {"driver": "simulated", "confidence": 1.5}})
    with pytest.raises(ConfigError) as caught:
        build_palm_scanner(config)
    assert caught.value.key == "devices.palm_scanner.confidence"


def test_a_device_the_caller_needs_but_config_lacks_is_a_config_error() -> None:
    config = config_with({"card_reader": {"driver": "simulated"}})
    with pytest.raises(ConfigError) as caught:
        build_palm_scanner(config)
    assert caught.value.key == "devices.palm_scanner"
    assert "no palm-scanner is configured" in str(caught.value)


NO_PYUSB = textwrap.dedent(
    """
    import json, sys
    sys.modules["usb"] = None  # pyusb not installed at all
    from pathlib import Path
    from drivers.errors import DriverUnavailable
    from posd.config import parse_config
    from posd.devices import build_card_reader, build_palm_scanner

    config = parse_config(
        {
            "terminal": {"store_id": "s1", "terminal_id": "t1", "mode": "development"},
            "keys": {"kms_key_id": "alias/k"},
            "payments": {"currencies": ["EUR"]},
            "devices": {
                "card_reader": {"driver": "simulated"},
                "palm_scanner": {"driver": "amazon-one", "vendor_id": 1, "product_id": 2},
            },
        },
        Path("posd.toml"),
    )
    try:
        build_palm_scanner(config)
        palm = None
    except DriverUnavailable as error:
        palm = [error.code, str(error)]
    print(json.dumps({"palm": palm, "card": type(build_card_reader(config)).__name__}))
    """
)


def test_missing_pyusb_is_driver_unavailable_for_the_palm_scanner_only() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_PYUSB], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["card"] == "SimulatedCardReader"  # the config loads, the card reader builds
    code, message = report["palm"]
    assert code == "driver_unavailable" and "needs module 'usb" in message


def test_a_refused_option_leaves_no_simulator_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the simulator makes its dir
    config = config_with({"card_reader": {"driver": "simulated", "ack_timeout_s": 0}})
    with pytest.raises(ConfigError, match="ack_timeout_s"):
        build_card_reader(config)
    assert list(tmp_path.iterdir()) == []
    with build_card_reader(config_with(SIMULATED)):  # the check sees the simulator's dir
        assert len(list(tmp_path.iterdir())) == 1
