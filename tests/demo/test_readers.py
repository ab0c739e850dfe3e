"""`python -m demo --reader NAME`: each reader class's setup is a config the daemon loads, and
only secure-msr runs the lane in P2PE mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.devconfig import DevConfig
from demo.readers import READERS, SECURE_MSR, SIMULATED_DRIVERS, reader_setup
from posd.cli.main import ArgumentError
from posd.config import load_config


@pytest.mark.parametrize("reader", READERS)
def test_each_reader_setup_loads(tmp_path: Path, reader: str) -> None:
    setup = reader_setup(reader)
    config = load_config(
        DevConfig(
            "s1",
            "t1",
            payments={"currencies": ["EUR"], **setup.payments},
            devices={"card_reader": setup.card_reader},
        ).write(tmp_path / "posd.toml")
    )
    assert config.devices["card_reader"].driver == SIMULATED_DRIVERS[reader]
    assert config.payments.card_data == ("p2pe" if reader == SECURE_MSR else "clear")
    assert setup.p2pe is (reader == SECURE_MSR)


def test_the_default_reader_is_the_serial_one_make_demo_uses() -> None:
    from demo.__main__ import build_parser

    assert build_parser().parse_args([]).reader == "serial"
    assert reader_setup("serial").card_reader == {"driver": "simulated"}
    with pytest.raises(ArgumentError, match="--reader"):
        build_parser().parse_args(["--reader", "usb"])


def test_a_p2pe_summary_says_what_clear_pans_means() -> None:
    from demo.__main__ import SUMMARY_WIDTH, render_summary

    result = {
        "lost": 0,
        "proven_through": 5,
        "last_seq": 5,
        "alarms": {},
        "daemon_exit_code": 0,
        "delivery_exit_code": 0,
        "sync_api": "v1",
        "refused": 0,
        "delivered": 5,
        "captured": 5,
        "voids": 0,
        "reader": "secure-msr",
        "clear_pans": {"journal": 0, "logs": 0, "memory": 0},
        "p2pe_calls": {"ReEncryptData": 8},
    }
    summary = render_summary(result)
    assert all(len(line) <= SUMMARY_WIDTH for line in summary.splitlines())
    text = " ".join(summary.split())
    assert "no clear card number anywhere" in text and "0 everywhere is the point" in text
    found = render_summary({**result, "clear_pans": {"journal": 0, "logs": 0, "memory": 2}})
    assert "2 CLEAR PANS" in found
