"""The shipped units verify and stay hardened (the API socket comes from `posd.socket`); the
IAM policy never grants Decrypt."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posd.config import load_config
from tests.repo import REPO_ROOT
from tests.terminal_identity import shipped_example

REPO = REPO_ROOT
UNIT = REPO / "systemd" / "posd.service"
SOCKET_UNIT = REPO / "systemd" / "posd.socket"
MAX_EXPOSURE = 2.5
analyze = shutil.which("systemd-analyze") or "systemd-analyze"
needs_analyze = pytest.mark.skipif(
    shutil.which(analyze) is None, reason="systemd-analyze not installed"
)


@needs_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    # The unit names the installed path; point it at this checkout's interpreter to verify it.
    unit = tmp_path / "posd.service"
    installed = "/opt/posd/bin/posd run"
    unit.write_text(UNIT.read_text().replace(installed, f"{sys.executable} -m posd run"))
    socket_unit = tmp_path / "posd.socket"
    socket_unit.write_text(SOCKET_UNIT.read_text())
    result = subprocess.run(
        [analyze, "verify", str(socket_unit), str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in result.stderr.splitlines() if "posd." in line]
    assert result.returncode == 0 and not problems, result.stderr


@needs_analyze
def test_unit_exposure_is_low() -> None:
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for posd.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-500:]
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_unit_keeps_state_private() -> None:
    text = UNIT.read_text()
    for line in ("StateDirectoryMode=0700", "UMask=0077", "NoNewPrivileges=yes", "Type=notify"):
        assert line in text


def unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_api_socket_comes_from_the_socket_unit_and_outlives_restarts(tmp_path: Path) -> None:
    socket_unit, service = unit_settings(SOCKET_UNIT), unit_settings(UNIT)
    production = load_config(shipped_example(tmp_path, "posd.toml"))  # with its [identity] files
    assert socket_unit["ListenStream"] == [str(production.api.socket)]  # where the CLI connects
    assert socket_unit["SocketMode"] == ["0660"]
    assert socket_unit["SocketGroup"] == [production.api.socket_group]
    assert socket_unit["Accept"] == ["no"]
    assert "posd.socket" in service["Requires"][0] and "posd.socket" in service["After"][0]
    assert service["RuntimeDirectoryPreserve"] == ["yes"]  # a stop must not remove the socket


def test_terminal_policy_is_least_privilege() -> None:
    policy = json.loads((REPO / "systemd" / "iam-terminal-policy.json").read_text())
    actions = {s["Action"] for s in policy["Statement"]}
    assert actions == {
        "kms:GenerateDataKey",
        "kms:GetPublicKey",
        "events:PutEvents",
        "events:DescribeEventBus",  # posd doctor: the bus exists (PutEvents has no dry run)
        "dynamodb:GetItem",  # its own proven watermark: the partition its certificate names
    }
    assert all(s["Effect"] == "Allow" and s["Resource"] != "*" for s in policy["Statement"])
    generate = next(s for s in policy["Statement"] if s["Action"] == "kms:GenerateDataKey")
    assert "kms:EncryptionContext:terminal_id" in json.dumps(generate["Condition"])
    watermark = next(s for s in policy["Statement"] if s["Action"] == "dynamodb:GetItem")
    assert "dynamodb:LeadingKeys" in json.dumps(watermark["Condition"])
    put = next(s for s in policy["Statement"] if s["Action"] == "events:PutEvents")
    assert {"events:source", "events:detail-type"} <= set(json.dumps(put["Condition"]).split('"'))
