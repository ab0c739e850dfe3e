"""Issue 22's doctor findings, each as it was seen: a fault doctor passed, a fault shown as
five, a fix that named nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from demo.devconfig import DevConfig
from posd.cli.main import main
from posd.doctor.checks import FAIL, OK, SKIP, WARN
from posd.doctor.disk import MIN_FREE_FLOOR_BYTES, judge_free
from posd.doctor.plan import CONFIG, STEPS
from tests.posd.doctor.conftest import Doctor, install

NOBODY_UID = 65534


def test_a_wrong_event_bus_name_fails(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    path = install(lane.amended(sync={"event_bus_name": "posd-no-such-bus"}), tmp_path)
    code, checks = run_doctor(path)
    assert code == 1
    assert checks["event bus"]["status"] == FAIL
    assert "posd-no-such-bus" in checks["event bus"]["detail"]


def test_the_right_event_bus_passes(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    code, checks = run_doctor(install(lane, tmp_path))
    assert checks["event bus"]["status"] == OK, checks["event bus"]
    assert code == 0, [c for c in checks.values() if c["status"] == FAIL]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_state_file_owned_by_another_user_fails(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor
) -> None:
    """Another user's, outside the state dir's group (not the other daemon's user: that one
    shares the journal through the group)."""
    path = install(lane, tmp_path)
    os.chown(tmp_path / "state" / "journal.db", NOBODY_UID, NOBODY_UID)
    code, checks = run_doctor(path)
    assert code == 1
    assert checks["state files"]["status"] == FAIL
    assert "journal.db" in checks["state files"]["detail"]


def test_no_free_space_fails_even_with_no_reserve(tmp_path: Path) -> None:
    check = judge_free(0, 0, tmp_path)
    assert check.status == FAIL and check.fix
    assert judge_free(MIN_FREE_FLOOR_BYTES - 1, 0, tmp_path).status == FAIL
    assert judge_free(MIN_FREE_FLOOR_BYTES, 0, tmp_path).status == WARN
    assert judge_free(MIN_FREE_FLOOR_BYTES * 2, 0, tmp_path).status == OK
    assert judge_free(MIN_FREE_FLOOR_BYTES * 4, MIN_FREE_FLOOR_BYTES * 3, tmp_path).status != FAIL
    reserve = MIN_FREE_FLOOR_BYTES * 8
    below = judge_free(reserve - 1, reserve, tmp_path)
    assert below.status == FAIL and "reserve" in below.detail


def test_doctor_fails_a_config_that_config_check_rejects(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, capsys: pytest.CaptureFixture[str]
) -> None:
    path = install(lane.amended(aws={"profile": "posd-no-such-profile"}), tmp_path)
    assert main(["config", "check", "--config", str(path), "--json"]) != 0
    refused = capsys.readouterr()
    code, checks = run_doctor(path)
    assert code == 1
    assert checks["config"]["status"] == FAIL
    assert "posd-no-such-profile" in checks["config"]["detail"]
    assert checks["config"]["detail"] in refused.out + refused.err


def test_one_missing_profile_is_one_fail_and_what_needs_it_is_skipped(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor
) -> None:
    path = install(lane.amended(aws={"profile": "posd-no-such-profile"}), tmp_path)
    _, checks = run_doctor(path)
    failed = [name for name, c in checks.items() if c["status"] == FAIL]
    assert failed == ["config"]
    for name in ("aws credentials", "kms reach", "events reach", "clock", "event bus"):
        assert checks[name]["status"] == SKIP, checks[name]
        assert checks[name]["detail"].startswith("skipped: ")
        assert checks[name]["detail"].endswith(" failed")
    # what needs only the parsed file still runs
    assert checks["state dir"]["status"] == OK


def test_checks_run_in_dependency_order() -> None:
    seen = {CONFIG}
    for step in STEPS:
        assert set(step.needs) <= seen, f"{step.name} runs before {set(step.needs) - seen}"
        seen.add(step.name)


def test_the_fix_for_a_missing_config_file_says_to_create_it(
    tmp_path: Path, run_doctor: Doctor
) -> None:
    missing = tmp_path / "posd.toml"
    code, checks = run_doctor(missing)
    assert code == 1
    fix = checks["config"]["fix"]
    assert "key named" not in fix
    assert str(missing) in fix and "create" in fix
    assert all(c["status"] == SKIP for name, c in checks.items() if name != "config")


def test_every_fail_and_warn_has_a_fix_every_skip_names_its_cause(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor
) -> None:
    path = install(lane.amended(aws={"profile": "posd-no-such-profile"}), tmp_path)
    _, checks = run_doctor(path)
    for check in checks.values():
        if check["status"] == SKIP:
            assert check["detail"].startswith("skipped: ")
        elif check["status"] != OK:
            assert check["fix"], check


def test_json_result_is_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--config", str(tmp_path / "none.toml"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False


BROKEN_CONFIGS = {
    "invalid TOML": lambda text: text + "\n[sync\n",
    "refused key": lambda text: text.replace("[sync]\n", "[sync]\nmax_in_flight = 0\n"),
    "unknown profile": lambda text: text.replace("[aws]\n", '[aws]\nprofile = "nope"\n'),
    "no region": lambda text: text.replace('region = "us-east-1"\n', ""),
}


@pytest.mark.parametrize("fault", sorted(BROKEN_CONFIGS))
def test_doctor_and_config_check_refuse_the_same_configs_the_same_way(
    fault: str,
    tmp_path: Path,
    lane: DevConfig,
    run_doctor: Doctor,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    path = install(lane, tmp_path)
    path.write_text(BROKEN_CONFIGS[fault](path.read_text()))
    assert main(["config", "check", "--config", str(path), "--json"]) != 0
    refused = capsys.readouterr()
    _, checks = run_doctor(path)
    assert checks["config"]["status"] == FAIL
    assert checks["config"]["detail"] in refused.out + refused.err
