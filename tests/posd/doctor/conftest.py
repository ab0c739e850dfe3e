"""Fixtures for the doctor tests: a lane config against the session's moto server, with a
real bus, and `run_doctor` that runs `posd doctor --json` the way a technician does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig
from posd.cli.main import main
from posd.journal import Journal
from tests.cards import STORE_ID, TERMINAL_ID

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
Doctor = Callable[[Path], tuple[int, dict[str, dict[str, Any]]]]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    # no profile from this machine's ~/.aws leaks in; a test writes its own
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def bus_name(events_client: Any) -> str:
    name = f"posd-doctor-{uuid.uuid4().hex[:10]}"
    events_client.create_event_bus(Name=name)
    return name


@pytest.fixture
def lane(aws_env: None, aws_endpoint: str, bus_name: str) -> DevConfig:
    """A development lane that passes doctor: its bus exists, moto answers."""
    return DevConfig(
        STORE_ID,
        TERMINAL_ID,
        api={"socket": "api.sock"},
        aws={"region": "us-east-1", "endpoint_url": aws_endpoint},
        sync={"event_bus_name": bus_name},
        devices={},
    )


@pytest.fixture
def run_doctor(capsys: pytest.CaptureFixture[str]) -> Doctor:
    def run(config: Path) -> tuple[int, dict[str, dict[str, Any]]]:
        code = main(["doctor", "--config", str(config), "--json"])
        result = json.loads(capsys.readouterr().out)
        return code, {c["name"]: c for c in result["checks"]}

    return run


def install(config: DevConfig, directory: Path) -> Path:
    """Write the config as `posd.toml` in `directory` and create its state dir and journal
    the way the daemon does on its first start."""
    path = config.write(directory / "posd.toml")
    with Journal.open(directory / "state"):
        pass
    return path
