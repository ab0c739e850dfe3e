"""`posd doctor` on an encrypting reader: its encryption in the devices line, and a WARN with
the fix that works (re-injection) when its DUKPT counter is nearly spent."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.devconfig import DevConfig
from posd.doctor.checks import OK, WARN
from posd.reader_encryption import REINJECT_FIX
from tests.posd.doctor.conftest import Doctor, install

P2PE = {"card_data": "p2pe", "p2pe_key_ref": "alias/posd-test-bdk", "currencies": ["EUR"]}

pytestmark = pytest.mark.usefixtures("fake_secure_msr")


def with_reader(lane: DevConfig, counter_used: float) -> DevConfig:
    reader = {"driver": "simulated-secure-msr", "counter_used": counter_used}
    return lane.amended(payments=P2PE, devices={"card_reader": reader})


def test_a_nearly_exhausted_reader_warns_until_it_is_reinjected(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor
) -> None:
    path = install(with_reader(lane, 0.93), tmp_path)
    _, checks = run_doctor(path)
    devices = checks["devices"]
    assert devices["status"] == WARN, devices
    assert "93% used" in devices["detail"] and "p2pe tdes-2key" in devices["detail"]
    assert devices["fix"] == REINJECT_FIX
    install(with_reader(lane, 0.0001), tmp_path)  # the reader, back from the injection facility
    _, checks = run_doctor(path)
    assert checks["devices"]["status"] == OK, checks["devices"]
    assert "p2pe tdes-2key" in checks["devices"]["detail"]
