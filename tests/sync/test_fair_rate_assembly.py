"""The published fair rate as a lane's config wires it (`posd.assembly`): `[sync]
fair_rate_parameter` read through `[aws] ssm_endpoint_url` with the lane's session; off (None)
when the key is empty."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig
from demo.localaws.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION, LocalAws
from posd.assembly import published_fair_rate
from posd.config import load_config

UNREACHED = "http://127.0.0.1:9"  # the other endpoints: never asked here


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", EMULATOR_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EMULATOR_CREDENTIALS["aws_secret_access_key"])


def lane_config(tmp_path: Path, aws_endpoint: str, parameter: str) -> Any:
    config = DevConfig(
        "store-0042",
        "lane-07",
        state_dir=tmp_path / "state",
        aws={
            "region": EMULATOR_REGION,
            "endpoint_url": UNREACHED,
            "ssm_endpoint_url": aws_endpoint,
        },
        sync={"fair_rate_parameter": parameter},
    )
    return load_config(config.write(tmp_path / "posd.toml"))


@pytest.mark.usefixtures("credentials")
def test_the_configured_parameter_is_read_through_the_ssm_endpoint(
    tmp_path: Path, local_aws: LocalAws, aws_endpoint: str
) -> None:
    name = f"/posd/assembly-{uuid.uuid4().hex[:8]}/fair-rate"
    local_aws.client("ssm").put_parameter(Name=name, Value="1.5", Type="String")
    fair_rate = published_fair_rate(lane_config(tmp_path, aws_endpoint, name))
    assert fair_rate is not None
    assert fair_rate() == 1.5


@pytest.mark.usefixtures("credentials")
def test_no_parameter_no_fair_rate(tmp_path: Path, aws_endpoint: str) -> None:
    assert published_fair_rate(lane_config(tmp_path, aws_endpoint, "")) is None
