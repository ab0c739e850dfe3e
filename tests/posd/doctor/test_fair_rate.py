"""`posd doctor`'s `fair rate`: the rate the lane reads from `[sync] fair_rate_parameter` (moto's
SSM over HTTP), or why it reads none, with a fix that, followed, makes it OK. A lane whose rate
cannot be read still delivers (it starts from its `[sync]` settings): a WARN, not a FAIL."""

from __future__ import annotations

import shlex
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig
from posd.doctor.checks import OK, WARN
from tests.posd.doctor.conftest import Doctor, install
from tests.posd.doctor.test_fixes import QUOTED_COMMAND

CHECK = "fair rate"
PUT_PARAMETER = ["aws", "ssm", "put-parameter"]


@pytest.fixture
def ssm(local_aws: Any) -> Any:
    return local_aws.client("ssm")


@pytest.fixture
def name() -> str:
    return f"/posd/doctor-{uuid.uuid4().hex[:8]}/fair-rate"


def check(run_doctor: Doctor, path: Path) -> dict[str, Any]:
    return run_doctor(path)[1][CHECK]


def warned(run_doctor: Doctor, path: Path) -> dict[str, Any]:
    seen = check(run_doctor, path)
    assert seen["status"] == WARN, seen
    assert seen["fix"], seen
    return seen


def run_put_parameter(fix: str, ssm: Any) -> None:
    """The `aws ssm put-parameter` the fix quotes, as the AWS CLI would send it (no CLI here)."""
    (command,) = QUOTED_COMMAND.findall(fix)
    words = shlex.split(command)
    assert words[:3] == PUT_PARAMETER, command
    options = dict(zip(words[3::2], words[4::2], strict=False))
    ssm.put_parameter(
        Name=options["--name"],
        Type=options["--type"],
        Value=options["--value"],
        Overwrite="--overwrite" in words,
    )


def test_off_when_no_parameter_is_configured(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor
) -> None:
    seen = check(run_doctor, install(lane, tmp_path))
    assert seen["status"] == OK
    assert "[sync] fair_rate_parameter" in seen["detail"]


def test_the_published_rate_is_shown(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, ssm: Any, name: str
) -> None:
    ssm.put_parameter(Name=name, Value="2.5", Type="String")
    seen = check(run_doctor, install(lane.amended(sync={"fair_rate_parameter": name}), tmp_path))
    assert seen["status"] == OK, seen
    assert seen["detail"] == f"{name}: 2.5 entries/s per lane"


def test_a_missing_parameter_is_published_as_the_fix_says(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, ssm: Any, name: str
) -> None:
    path = install(lane.amended(sync={"fair_rate_parameter": name}), tmp_path)
    seen = warned(run_doctor, path)
    assert "ParameterNotFound" in seen["detail"]
    assert f"[sync] fair_rate_parameter in {path}" in seen["fix"]
    run_put_parameter(seen["fix"], ssm)
    assert check(run_doctor, path)["status"] == OK


def test_a_bad_value_is_overwritten_as_the_fix_says(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, ssm: Any, name: str
) -> None:
    ssm.put_parameter(Name=name, Value="5 per second", Type="String")
    path = install(lane.amended(sync={"fair_rate_parameter": name}), tmp_path)
    seen = warned(run_doctor, path)
    assert "5 per second" in seen["detail"]
    run_put_parameter(seen["fix"], ssm)
    assert check(run_doctor, path)["status"] == OK


def test_an_unreachable_ssm_endpoint_names_the_key(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, ssm: Any, name: str, aws_endpoint: str
) -> None:
    ssm.put_parameter(Name=name, Value="1", Type="String")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    path = install(
        lane.amended(sync={"fair_rate_parameter": name}, aws={"ssm_endpoint_url": closed}),
        tmp_path,
    )
    seen = warned(run_doctor, path)
    assert "Could not connect" in seen["detail"]
    assert f"[aws] ssm_endpoint_url / endpoint_url in {path}" in seen["fix"]
    assert "posd-sync.service.d/endpoints.conf" in seen["fix"]
    install(
        lane.amended(sync={"fair_rate_parameter": name}, aws={"ssm_endpoint_url": aws_endpoint}),
        tmp_path,
    )
    assert check(run_doctor, path)["status"] == OK
