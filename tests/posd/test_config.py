"""Config: the shipped examples load; every error names file, key and expectation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from posd.config import load_config
from posd.errors import ConfigError
from tests.repo import REPO_ROOT
from tests.terminal_identity import lane_credentials, shipped_example

REPO = REPO_ROOT
# A production config's required keys (`write` puts the lane's certificate and key beside
# it); NO_PAYMENTS for the cases that write [payments] whole.
NO_PAYMENTS = (
    '[terminal]\nstore_id = "s1"\nterminal_id = "t1"\n[keys]\nkms_key_id = "alias/k"\n'
    '[identity]\ncertificate_file = "terminal.pem"\nprivate_key_file = "terminal.key"\n'
)
MINIMAL = NO_PAYMENTS + '[payments]\ncurrencies = ["EUR"]\n'


def write(tmp_path: Path, text: str) -> Path:
    """`text` as tmp_path/posd.toml, with a certificate and key for store s1, lane t1."""
    if not (tmp_path / "terminal.pem").exists():
        lane_credentials(tmp_path, "s1", "t1")
    path = tmp_path / "posd.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["posd.toml", "dev.toml"])
def test_shipped_examples_load(tmp_path: Path, name: str) -> None:
    config = load_config(shipped_example(tmp_path, name))
    assert config.store_id and config.terminal_id
    assert "card_reader" in config.devices


def test_minimal_config_takes_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.terminal.mode == "production"
    assert config.sync.max_entries_per_request == 10
    assert config.keys.provider == "kms"
    assert config.payments.currencies == ("EUR",)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (MINIMAL + "[sync]\nmax_in_flight = 0\n", "sync.max_in_flight", ""),
        (MINIMAL + "[sync]\nmax_in_flight = 'many'\n", "sync.max_in_flight", "expected an integer"),
        (MINIMAL + "[journal]\nmax_bytes = 10\n", "journal.max_bytes", "at least 1 MiB"),
        (MINIMAL + "[journal]\nmax_byte = 10\n", "journal.max_byte", "unknown key"),
        (MINIMAL + "[jornal]\n", "jornal", "unknown section"),
        ('[terminal]\nstore_id = "s"\n', "terminal.terminal_id", "required key is missing"),
        (MINIMAL.replace('"t1"', "7"), "terminal.terminal_id", "expected a string"),
        (MINIMAL + "[offline]\nmax_pending_count = -1\n", "offline.max_pending_count", ">= 0"),
        (NO_PAYMENTS + "[payments]\ncurrencies = ['EUX']\n", "payments.currencies", "EUX"),
        (NO_PAYMENTS + "[payments]\ncurrencies = []\n", "payments.currencies", "at least one"),
        (NO_PAYMENTS + "[payments]\ncurrencies = 'EUR'\n", "payments.currencies", "a list of"),
        (NO_PAYMENTS, "payments.currencies", "required in production"),
        (
            MINIMAL.replace('kms_key_id = "alias/k"', 'provider = "local"\nlocal_key_file = "k"'),
            "keys.provider",
            "development only",
        ),
        (
            MINIMAL + "[devices.card_reader]\nport = 'x'\n",
            "devices.card_reader.driver",
            "driver name",
        ),
        (MINIMAL + "[devices.till]\ndriver = 'serial'\n", "devices.till", "unknown device"),
        (
            MINIMAL + "[devices.card_reader]\ndriver = 'usb'\n",
            "devices.card_reader.driver",
            "unknown driver",
        ),
        (
            MINIMAL + "[devices.card_reader]\ndriver = 'serial'\nport = '/dev/x'\nbaud = 9600\n",
            "devices.card_reader.baud",
            "unknown option",
        ),
        (
            MINIMAL + "[devices.card_reader]\ndriver = 'serial'\nbaudrate = 'fast'\n",
            "devices.card_reader.baudrate",
            "expected an integer",
        ),
        (
            MINIMAL + "[devices.palm_scanner]\ndriver = 'simulated'\nidentities = 5\n",
            "devices.palm_scanner.identities",
            "expected a table",
        ),
        (
            MINIMAL + "[devices.palm_scanner]\ndriver = 'simulated'\nconfidence = nan\n",
            "devices.palm_scanner.confidence",
            "finite number",
        ),
        (
            MINIMAL + "[devices.card_reader]\ndriver = 'simulated'\ndeck = 5\n",
            "devices.card_reader.deck",
            "cannot be set",
        ),
    ],
)
def test_errors_name_file_key_and_expectation(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}:"), message
    assert expected in message


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[terminal\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_deeply_nested_toml_is_a_config_error(tmp_path: Path) -> None:
    depth = 500
    path = write(tmp_path, MINIMAL + "[sync]\nsource = " + "[" * depth + "]" * depth + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "posd", "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nested too deeply" in result.stderr


def test_cli_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[sync]\nsource = 'aws.events'\n")
    result = subprocess.run(
        [sys.executable, "-m", "posd", "config", "check", "--config", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "sync.source" in result.stderr and "aws." in result.stderr
    assert '"error": "config_invalid"' in result.stdout


def test_device_options_are_checked_and_widened(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "[devices.palm_scanner]\ndriver = 'amazon-one'\nvendor_id = 0x1d6b\n"
        + "product_id = 4\nresponse_timeout_s = 2\n"
    )
    config = load_config(write(tmp_path, text))
    options = config.devices["palm_scanner"].options
    assert options == {"vendor_id": 0x1D6B, "product_id": 4, "response_timeout_s": 2.0}
    assert isinstance(options["response_timeout_s"], float)


def test_a_closed_set_of_option_values_is_checked_when_the_config_loads(tmp_path: Path) -> None:
    """A keyboard layout the driver does not know is named with the known ones at load
    time, not when the daemon first opens the reader."""
    reader = "[devices.card_reader]\ndriver = 'hid-keyboard'\nvendor_id = 0x0801\nproduct_id = 1\n"
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, MINIMAL + reader + "layout = 'xx'\n"))
    assert raised.value.key == "devices.card_reader.layout"
    assert '"us", "uk", "de", "fr"' in str(raised.value)
    config = load_config(write(tmp_path, MINIMAL + reader + "layout = 'de'\n"))
    assert config.devices["card_reader"].options["layout"] == "de"


def test_a_dukpt_scheme_is_checked_when_the_config_loads(tmp_path: Path) -> None:
    reader = "[devices.card_reader]\ndriver = 'secure-msr'\nvendor_id = 0x0ACD\nproduct_id = 1\n"
    # an encrypting reader needs P2PE mode (tests/posd/test_config_card_data.py)
    p2pe = MINIMAL + "card_data = 'p2pe'\np2pe_key_ref = 'alias/posd-bdk'\n"
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, p2pe + reader + "scheme = 'des'\n"))
    assert raised.value.key == "devices.card_reader.scheme"
    assert '"tdes-2key", "aes-128"' in str(raised.value)
    config = load_config(write(tmp_path, p2pe + reader + "scheme = 'aes-128'\n"))
    assert config.devices["card_reader"].options["scheme"] == "aes-128"
