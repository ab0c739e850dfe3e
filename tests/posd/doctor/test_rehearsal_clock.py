"""A rehearsal clock (sync/clock.py) never runs a lane silently: doctor names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.devconfig import DevConfig
from posd.doctor.checks import OK, WARN
from sync.clock import REHEARSAL_ENV
from tests.posd.doctor.conftest import Doctor, install

CHECK = "rehearsal clock"


def test_the_system_clock_passes(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    _, checks = run_doctor(install(lane, tmp_path))
    assert checks[CHECK]["status"] == OK


def test_a_rehearsal_clock_in_the_environment_is_named(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REHEARSAL_ENV, "1800000000:0:1000")
    _, checks = run_doctor(install(lane, tmp_path))
    assert checks[CHECK]["status"] == WARN
    assert REHEARSAL_ENV in checks[CHECK]["fix"]
