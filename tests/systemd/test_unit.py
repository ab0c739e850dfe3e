"""The shipped units verify and stay hardened, each with only what its process needs: capture
(`posd.service`, its API socket from `posd.socket`), delivery (`posd-sync.service`) and the
credentials helper (`posd-credentials.service`) under `posd.target`; two users sharing the
group `posd` for the state dir; the IAM policy never grants Decrypt."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from posd.config import load_config
from posd.journal.files import DIR_MODE, FILE_MODE, OWNER_ONLY_MODE
from tests.repo import REPO_ROOT
from tests.terminal_identity import shipped_example

REPO = REPO_ROOT
SYSTEMD = REPO / "systemd"
UNIT = SYSTEMD / "posd.service"  # capture
SYNC_UNIT = SYSTEMD / "posd-sync.service"  # delivery
CREDENTIALS_UNIT = SYSTEMD / "posd-credentials.service"
SOCKET_UNIT = SYSTEMD / "posd.socket"
TARGET = SYSTEMD / "posd.target"
SERVICES = (UNIT, SYNC_UNIT, CREDENTIALS_UNIT)
DAEMONS = (UNIT, SYNC_UNIT)
DROP_IN = "endpoints.conf"
MAX_EXPOSURE = 1.5
INSTALLED_POSD = "/opt/posd/bin/posd "
CONFIG = "/etc/posd/posd.toml"
STATE_DIR = "/var/lib/posd"
analyze = shutil.which("systemd-analyze") or "systemd-analyze"
needs_analyze = pytest.mark.skipif(
    shutil.which(analyze) is None, reason="systemd-analyze not installed"
)


def installed_here(tmp_path: Path) -> Path:
    """The units and their example drop-ins as an installer lays them out, naming this
    checkout's interpreter for posd (the commands must exist for verify)."""
    for unit in (*SERVICES, SOCKET_UNIT, TARGET):
        text = unit.read_text().replace(INSTALLED_POSD, f"{sys.executable} -m posd ")
        (tmp_path / unit.name).write_text(text)
    for service in SERVICES:
        example = SYSTEMD / f"{service.name}.d" / f"{DROP_IN}.example"
        (tmp_path / f"{service.name}.d").mkdir()
        (tmp_path / f"{service.name}.d" / DROP_IN).write_text(example.read_text())
    return tmp_path


@needs_analyze
def test_units_verify(tmp_path: Path) -> None:
    """Every unit and the example drop-ins parse, name only commands that exist, and every
    dependency resolves."""
    here = installed_here(tmp_path)
    names = [unit.name for unit in (TARGET, SOCKET_UNIT, *SERVICES)]
    result = subprocess.run(
        [analyze, "verify", *names], capture_output=True, text=True, timeout=60, cwd=here
    )
    problems = [line for line in result.stderr.splitlines() if "posd" in line]
    assert result.returncode == 0 and not problems, result.stderr


def exposure(unit: Path) -> float:
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(
        rf"Overall exposure level for {re.escape(unit.name)}: ([0-9.]+)", result.stdout
    )
    assert found, result.stdout[-500:]
    return float(found.group(1))


@needs_analyze
@pytest.mark.parametrize("unit", SERVICES, ids=lambda unit: unit.name)
def test_each_unit_exposure_is_low(unit: Path) -> None:
    assert exposure(unit) <= MAX_EXPOSURE


def unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def words(settings: dict[str, list[str]], key: str) -> list[str]:
    """Every value of `key`, over all its lines (`After=a b` and `After=c`: a, b, c)."""
    return [word for value in settings.get(key, []) for word in value.split()]


def test_one_target_starts_stops_and_reloads_every_unit() -> None:
    target = unit_settings(TARGET)
    assert set(words(target, "Wants")) == {service.name for service in SERVICES}
    assert target["WantedBy"] == ["multi-user.target"]
    for service in SERVICES:
        settings = unit_settings(service)
        assert settings["PartOf"] == [TARGET.name], service.name  # stop, restart
        assert settings["WantedBy"] == [TARGET.name], service.name  # enable
    for daemon in DAEMONS:
        assert unit_settings(daemon)["ReloadPropagatedFrom"] == [TARGET.name]  # reload
        assert "ExecReload" in unit_settings(daemon)


def test_each_daemon_its_own_user_sharing_one_group_for_the_state_dir(tmp_path: Path) -> None:
    capture, delivery = unit_settings(UNIT), unit_settings(SYNC_UNIT)
    assert capture["User"] == ["posd"] and delivery["User"] == ["posd-sync"]
    assert capture["Group"] == delivery["Group"] == ["posd"]
    production = load_config(shipped_example(tmp_path, "posd.toml"), signs=False)
    assert str(production.state_dir) == STATE_DIR
    # One owner of the state dir (systemd chowns it to its User=); the other only reaches it.
    assert capture["StateDirectory"] == [Path(STATE_DIR).name]
    assert capture["StateDirectoryMode"] == [f"{DIR_MODE:04o}"]
    assert "StateDirectory" not in delivery and delivery["ReadWritePaths"] == [STATE_DIR]
    for settings in (capture, delivery):
        assert settings["ProtectSystem"] == ["strict"]
        umask = int(settings["UMask"][0], 8)
        assert umask & 0o007 == 0o007  # nothing for others
        assert FILE_MODE & ~umask == FILE_MODE  # the group keeps what both write
        assert OWNER_ONLY_MODE & ~umask == OWNER_ONLY_MODE


def test_delivery_has_no_devices_no_api_socket_and_comes_after_capture() -> None:
    delivery = unit_settings(SYNC_UNIT)
    assert delivery["ExecStart"] == ["/opt/posd/bin/posd sync run --config /etc/posd/posd.toml"]
    assert delivery["Type"] == ["notify"] and delivery["WatchdogSec"]
    assert delivery["Restart"] == ["on-failure"] and delivery["RestartPreventExitStatus"] == ["2"]
    assert "posd.service" in words(delivery, "After")  # the journal is capture's to create
    assert delivery["PrivateDevices"] == ["yes"]
    for absent in ("DeviceAllow", "SupplementaryGroups", "Requires", "Sockets"):
        assert absent not in delivery, absent
    assert "posd.socket" not in SYNC_UNIT.read_text()
    assert "AF_NETLINK" not in words(delivery, "RestrictAddressFamilies")


def test_network_is_loopback_until_the_store_names_its_endpoints() -> None:
    """`IPAddressAllow=` takes prefixes, not names: the shipped units allow loopback alone, and
    each example drop-in adds addresses (the store's VPC interface endpoints, its DNS)."""
    for service in SERVICES:
        settings = unit_settings(service)
        assert settings["IPAddressDeny"] == ["any"], service.name
        assert settings["IPAddressAllow"] == ["localhost"], service.name
        drop_in = unit_settings(SYSTEMD / f"{service.name}.d" / f"{DROP_IN}.example")
        allowed = words(drop_in, "IPAddressAllow")
        assert allowed and all(ipaddress.ip_network(prefix) for prefix in allowed)
        assert set(drop_in) <= {"[Service]", "IPAddressAllow", "Environment"}, service.name


def test_only_the_key_owner_runs_the_signing_helper(tmp_path: Path) -> None:
    """[identity]'s private key is posd-sync's (0600): delivery signs, the helper gets both
    daemons (and doctor) their credentials on loopback, where the shipped config points them;
    capture's user never reads the key."""
    helper = unit_settings(CREDENTIALS_UNIT)
    assert helper["User"] == unit_settings(SYNC_UNIT)["User"]
    # posd runs the helper with [identity]'s files and the endpoint's port (one place names
    # them: tests/posd/cli/test_credentials_cmd.py), and the ARNs from the EnvironmentFile.
    assert helper["ExecStart"] == [f"{INSTALLED_POSD}credentials serve --config {CONFIG}"]
    assert helper["EnvironmentFile"] == ["/etc/posd/roles-anywhere.env"]
    production = load_config(shipped_example(tmp_path, "posd.toml"))
    assert urlsplit(production.aws.credentials_endpoint or "").hostname == "127.0.0.1"


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
        "ssm:GetParameter",  # the fair rate the chain publishes ([sync] fair_rate_parameter)
    }
    assert all(s["Effect"] == "Allow" and s["Resource"] != "*" for s in policy["Statement"])
    generate = next(s for s in policy["Statement"] if s["Action"] == "kms:GenerateDataKey")
    assert "kms:EncryptionContext:terminal_id" in json.dumps(generate["Condition"])
    watermark = next(s for s in policy["Statement"] if s["Action"] == "dynamodb:GetItem")
    assert "dynamodb:LeadingKeys" in json.dumps(watermark["Condition"])
    put = next(s for s in policy["Statement"] if s["Action"] == "events:PutEvents")
    assert {"events:source", "events:detail-type"} <= set(json.dumps(put["Condition"]).split('"'))
