"""`[payments] card_data`: clear or P2PE, and the reader that goes with each."""

from __future__ import annotations

from pathlib import Path

import pytest

from posd.config import load_config
from posd.errors import ConfigError
from tests.posd.test_config import MINIMAL, write

KEY_REF = "alias/posd-bdk"
READER = '[devices.card_reader]\ndriver = "{driver}"\n'
# The USB readers' required options (an ID TECH SecureMag's ids; a keyboard reader's alike).
USB_IDS = "vendor_id = 2765\nproduct_id = 8208\n"


def config_text(payments: str, driver: str | None) -> str:
    text = MINIMAL.replace('[payments]\ncurrencies = ["EUR"]\n', "") + (
        '[payments]\ncurrencies = ["EUR"]\n' + payments
    )
    if driver is None:
        return text
    text += READER.format(driver=driver)
    if driver == "serial":
        return text + 'port = "/dev/ttyUSB0"\n'
    return text + (USB_IDS if not driver.startswith("simulated") else "")


def test_card_data_is_clear_by_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, config_text("", "simulated")))
    assert config.payments.card_data == "clear"
    assert config.payments.p2pe_key_ref is None


@pytest.mark.parametrize("driver", ["secure-msr", "simulated-secure-msr"])
def test_p2pe_with_an_encrypting_reader_loads(tmp_path: Path, driver: str) -> None:
    payments = f'card_data = "p2pe"\np2pe_key_ref = "{KEY_REF}"\n'
    config = load_config(write(tmp_path, config_text(payments, driver)))
    assert config.payments.card_data == "p2pe"
    assert config.payments.p2pe_key_ref == KEY_REF


def test_p2pe_without_a_card_reader_loads(tmp_path: Path) -> None:
    """A palm-only lane holds no card data either way."""
    payments = f'card_data = "p2pe"\np2pe_key_ref = "{KEY_REF}"\n'
    assert load_config(write(tmp_path, config_text(payments, None))).payments.card_data == "p2pe"


@pytest.mark.parametrize(
    ("payments", "driver", "key", "expected"),
    [
        ('card_data = "encrypted"\n', "simulated", "payments.card_data", "clear, p2pe"),
        ('card_data = "p2pe"\n', "secure-msr", "payments.p2pe_key_ref", "required"),
        ('card_data = "p2pe"\np2pe_key_ref = ""\n', "secure-msr", "payments.p2pe_key_ref", ""),
        (
            'card_data = "p2pe"\np2pe_key_ref = "posd-bdk"\n',
            "secure-msr",
            "payments.p2pe_key_ref",
            "alias/",
        ),
        (
            f'card_data = "p2pe"\np2pe_key_ref = "{KEY_REF}"\n',
            "serial",
            "payments.card_data",
            "does not encrypt",
        ),
        (
            f'card_data = "p2pe"\np2pe_key_ref = "{KEY_REF}"\n',
            "hid-keyboard",
            "payments.card_data",
            "secure-msr",
        ),
        ("", "secure-msr", "payments.card_data", "cannot read its card numbers"),
        ('card_data = "clear"\n', "simulated-secure-msr", "payments.card_data", "p2pe"),
    ],
)
def test_card_data_errors_name_the_key(
    tmp_path: Path, payments: str, driver: str, key: str, expected: str
) -> None:
    text = config_text(payments, driver)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.key == key
    assert expected in caught.value.expected


def test_key_ref_may_be_an_arn(tmp_path: Path) -> None:
    arn = "arn:aws:payment-cryptography:eu-west-1:111122223333:key/abcd1234abcd1234"
    payments = f'card_data = "p2pe"\np2pe_key_ref = "{arn}"\n'
    config = load_config(write(tmp_path, config_text(payments, "secure-msr")))
    assert config.payments.p2pe_key_ref == arn
