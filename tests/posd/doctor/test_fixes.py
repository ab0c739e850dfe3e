"""Every FAIL doctor can produce here, driven through the fix it prints: make the fault, run
`posd doctor --json`, follow the fix (run the command it quotes, or make the edit it names),
run doctor again and see that check OK.

Not here: `disk` (freeing a real file system's space: `test_seen` judges the numbers),
`identity` (tests/posd/test_doctor_identity.py follows its renewal), `clock` (a host's time
sync), `offline key` (its fix is a daemon start with KMS), `journal` damage (the journal
tools' own tests), `delivery` (a running daemon's link: test_delivery.py) and `offline limits`
(a running daemon's spent limit: tests/posd/daemon/test_status_limits.py follows its fix).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig
from demo.localaws.eventbridge_v2 import EventBridgeV2Endpoint
from posd.doctor.checks import FAIL, OK
from posd.keys.factory import OFFLINE_PUBLIC_KEY_CACHE
from tests.posd.doctor.conftest import Doctor, install

QUOTED_COMMAND = re.compile(r"`([^`]+)`")
NOBODY_UID = 65534
OTHER_DAEMON_UID = 61002  # stands for posd-sync: another user, in the state dir's group
FOLLOW_TIMEOUT_S = 10.0


def failing(run_doctor: Doctor, config: Path, name: str) -> str:
    """The fix doctor prints for `name`, which must FAIL (exit 1)."""
    code, checks = run_doctor(config)
    assert code == 1
    assert checks[name]["status"] == FAIL, checks[name]
    fix = checks[name]["fix"]
    assert fix, checks[name]
    return str(fix)


def failing_detail(run_doctor: Doctor, config: Path) -> str:
    return str(run_doctor(config)[1]["state files"]["detail"])


def passing(run_doctor: Doctor, config: Path, name: str) -> None:
    _, checks = run_doctor(config)
    assert checks[name]["status"] == OK, checks[name]


def follow(fix: str) -> None:
    """Run every command the fix quotes, as a technician would paste them."""
    commands = QUOTED_COMMAND.findall(fix)
    assert commands, fix
    for command in commands:
        subprocess.run(shlex.split(command), check=True, timeout=FOLLOW_TIMEOUT_S)


def test_a_missing_config_file(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    path = tmp_path / "posd.toml"
    fix = failing(run_doctor, path, "config")
    assert f"create {path}" in fix
    install(lane, tmp_path)  # created, as the fix says
    passing(run_doctor, path, "config")


def test_a_refused_key(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    path = tmp_path / "posd.toml"
    install(lane, tmp_path)
    text = path.read_text().replace("[sync]\n", "[sync]\nmax_entries_per_request = 500\n")
    path.write_text(text)
    fix = failing(run_doctor, path, "config")
    assert "sync.max_entries_per_request" in fix and str(path) in fix
    path.write_text(text.replace("max_entries_per_request = 500", "max_entries_per_request = 10"))
    passing(run_doctor, path, "config")


def test_a_missing_profile(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    path = install(lane.amended(aws={"profile": "posd-lane"}), tmp_path)
    fix = failing(run_doctor, path, "config")
    assert "AWS_CONFIG_FILE" in fix and "[aws] profile" in fix
    Path(os.environ["AWS_CONFIG_FILE"]).write_text("[profile posd-lane]\nregion = us-east-1\n")
    passing(run_doctor, path, "config")


def test_no_credentials(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    path = install(lane, tmp_path)
    fix = failing(run_doctor, path, "aws credentials")
    assert "[aws] profile" in fix
    Path(os.environ["AWS_CONFIG_FILE"]).write_text(
        "[profile posd-lane]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    install(lane.amended(aws={"profile": "posd-lane"}), tmp_path)
    passing(run_doctor, path, "aws credentials")


def test_a_missing_state_dir(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    path = lane.write(tmp_path / "posd.toml")
    follow(failing(run_doctor, path, "state dir"))
    passing(run_doctor, path, "state dir")
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o770


def test_a_state_dir_others_can_read(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    path = install(lane, tmp_path)
    (tmp_path / "state").chmod(0o755)
    follow(failing(run_doctor, path, "state dir"))
    passing(run_doctor, path, "state dir")


def test_state_files_others_can_read(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    path = install(lane, tmp_path)
    (tmp_path / "state" / "journal.db").chmod(0o644)
    (tmp_path / "state" / "journal.identity").chmod(0o640)
    follow(failing(run_doctor, path, "state files"))
    passing(run_doctor, path, "state files")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_state_file_left_to_another_user(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor
) -> None:
    path = install(lane, tmp_path)
    os.chown(tmp_path / "state" / "journal.identity", NOBODY_UID, NOBODY_UID)
    fix = failing(run_doctor, path, "state files")
    assert "chown" in fix and "reset" not in fix
    follow(fix)
    passing(run_doctor, path, "state files")


def test_shared_files_that_miss_the_group_or_a_key_cache_open_to_it(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor
) -> None:
    """What both daemons write must be group read-write (0660); a key cache only capture reads
    stays owner-only (0600): the delivery daemon's user must not read it."""
    path = install(lane, tmp_path)
    state = tmp_path / "state"
    (state / "journal.db").chmod(0o600)  # delivery could not write it
    cache = state / OFFLINE_PUBLIC_KEY_CACHE
    cache.write_text("{}")
    cache.chmod(0o640)  # delivery could read it
    fix = failing(run_doctor, path, "state files")
    assert f"chmod 0660 {state / 'journal.db'}" in fix and f"chmod 0600 {cache}" in fix, fix
    follow(fix)
    passing(run_doctor, path, "state files")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_the_other_daemons_user_may_own_shared_files_not_key_caches(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor
) -> None:
    """Delivery (another user in the state dir's group) writes the journal's files and its
    status: doctor takes them as shared; a key cache of that user's is not capture's."""
    path = install(lane, tmp_path)
    state = tmp_path / "state"
    group = state.stat().st_gid
    for name in ("journal.identity", "sync.lock"):
        (state / name).touch()
        (state / name).chmod(0o660)
        os.chown(state / name, OTHER_DAEMON_UID, group)
    passing(run_doctor, path, "state files")
    cache = state / OFFLINE_PUBLIC_KEY_CACHE
    cache.write_text("{}")
    cache.chmod(0o600)
    os.chown(cache, OTHER_DAEMON_UID, group)
    fix = failing(run_doctor, path, "state files")
    assert f"{OFFLINE_PUBLIC_KEY_CACHE} owned by" in failing_detail(run_doctor, path), fix
    follow(fix)
    passing(run_doctor, path, "state files")
    assert cache.stat().st_uid == state.stat().st_uid


def test_a_wrong_event_bus_name(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, events_client: Any
) -> None:
    bus = f"posd-doctor-{uuid.uuid4().hex[:10]}"
    path = install(lane.amended(sync={"event_bus_name": bus}), tmp_path)
    fix = failing(run_doctor, path, "event bus")
    assert "[sync] event_bus_name" in fix
    (command,) = QUOTED_COMMAND.findall(fix)
    assert command == f"aws events create-event-bus --name {bus}"
    events_client.create_event_bus(Name=bus)  # that command, through boto3
    passing(run_doctor, path, "event bus")


def test_a_wrong_v2_bus_arn(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, sqs_client: Any
) -> None:
    with EventBridgeV2Endpoint() as endpoint:
        queue = sqs_client.create_queue(QueueName=f"posd-doctor-{uuid.uuid4().hex[:10]}")
        real = endpoint.create_bus("posd-payments", sqs_client, queue["QueueUrl"])
        prefix, bus_id = real.rsplit("/", 1)
        wrong = f"{prefix}/{'0' * len(bus_id)}"  # the same name, another bus
        v2 = lane.amended(
            sync={"api": "v2", "event_bus_arn": wrong},
            aws={"events_endpoint_url": endpoint.endpoint_url},
        )
        path = install(v2, tmp_path)
        fix = failing(run_doctor, path, "event bus")
        assert f"[sync] event_bus_arn in {path}" in fix
        install(v2.amended(sync={"event_bus_arn": real}), tmp_path)
        passing(run_doctor, path, "event bus")


def test_an_unreachable_endpoint(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, aws_endpoint: str
) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    path = install(lane.amended(aws={"endpoint_url": f"http://127.0.0.1:{port}"}), tmp_path)
    fix = failing(run_doctor, path, "events reach")
    assert f"[aws] endpoint_url / events_endpoint_url in {path}" in fix
    install(lane.amended(aws={"endpoint_url": aws_endpoint}), tmp_path)
    passing(run_doctor, path, "events reach")


def test_a_wrong_kms_key(
    tmp_path: Path, lane: DevConfig, run_doctor: Doctor, kms_client: Any
) -> None:
    missing = f"arn:aws:kms:us-east-1:123456789012:key/{uuid.uuid4()}"
    path = install(lane.amended(keys={"provider": "kms", "kms_key_id": missing}), tmp_path)
    fix = failing(run_doctor, path, "kms key")
    assert f"[keys] kms_key_id in {path}" in fix
    key = kms_client.create_key(Description="posd doctor")["KeyMetadata"]["Arn"]
    install(lane.amended(keys={"provider": "kms", "kms_key_id": key}), tmp_path)
    passing(run_doctor, path, "kms key")


def test_a_reader_on_the_wrong_port(tmp_path: Path, lane: DevConfig, run_doctor: Doctor) -> None:
    from demo.devconfig import serial_card_reader
    from drivers.card.simulator import CardReaderSimulator

    wrong = lane.amended(devices={"card_reader": serial_card_reader(str(tmp_path / "ttyNone"))})
    path = install(wrong, tmp_path)
    fix = failing(run_doctor, path, "devices")
    assert f"[devices.card_reader] of {path}" in fix
    with CardReaderSimulator() as reader:  # the cable, on the port the config now names
        install(lane.amended(devices={"card_reader": serial_card_reader(reader.port)}), tmp_path)
        passing(run_doctor, path, "devices")
