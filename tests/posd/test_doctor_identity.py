"""`posd doctor`'s identity check: the lane's certificate and key load, belong together, name
this lane, and how many days they have left; an expired one fails with a fix that works."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig
from posd.cli.main import main
from posd.config import load_config
from posd.doctor.checks import FAIL, OK, WARN, Context, check_identity
from posd.identity import RENEW_WARN_DAYS
from tests.terminal_identity import lane_credentials, lane_identity

STORE_ID = "store-0042"
TERMINAL_ID = "lane-07"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def unused_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


def config(tmp_path: Path, **issue: Any) -> Path:
    return DevConfig(
        STORE_ID,
        TERMINAL_ID,
        identity=lane_identity(tmp_path / "pki", STORE_ID, TERMINAL_ID, **issue),
        # nothing listens there: the AWS checks fail fast, this file's check is not theirs
        aws={"region": "us-east-1", "endpoint_url": f"http://127.0.0.1:{unused_port()}"},
        devices={},
    ).write(tmp_path / "posd.toml")


def identity_check(path: Path) -> Any:
    return check_identity(Context(load_config(path)))


def test_doctor_reports_the_certificate_and_its_days_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    path = config(tmp_path)
    main(["doctor", "--config", str(path), "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    identity = checks["identity"]
    assert identity["status"] == OK, identity
    assert f"CN={TERMINAL_ID}, OU={STORE_ID}" in identity["detail"]
    days = re.search(r"\((\d+) days left\)", identity["detail"])
    assert days is not None and 363 <= int(days.group(1)) <= 365


def test_a_certificate_about_to_expire_warns_with_the_renewal(tmp_path: Path) -> None:
    soon = dt.timedelta(days=RENEW_WARN_DAYS - 10)
    check = identity_check(config(tmp_path, valid_for=soon))
    assert check.status == WARN
    assert f"({RENEW_WARN_DAYS - 11} days left)" in check.detail
    assert check.fix and "restart posd" in check.fix


def test_an_expired_certificate_fails_and_the_fix_it_names_works(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
        valid_for=dt.timedelta(days=29),
    )
    check = identity_check(path)
    assert check.status == FAIL
    assert "expired" in check.detail
    # The fix: a new certificate for CN=lane, OU=store, installed where [identity] says.
    assert check.fix is not None
    assert f"CN={TERMINAL_ID}, OU={STORE_ID}" in check.fix
    certificate_file = tmp_path / "pki" / "terminal.pem"
    key_file = tmp_path / "pki" / "terminal.key"
    assert str(certificate_file) in check.fix and str(key_file) in check.fix
    lane_credentials(tmp_path / "pki", STORE_ID, TERMINAL_ID)  # the CA's new pair, installed
    assert identity_check(path).status == OK


def test_a_certificate_not_yet_valid_fails_pointing_at_the_clock(tmp_path: Path) -> None:
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    check = identity_check(config(tmp_path, not_before=tomorrow))
    assert check.status == FAIL
    assert "not valid before" in check.detail and check.fix and "time sync" in check.fix


def test_development_without_identity_warns_that_side_events_go_unsigned(
    tmp_path: Path,
) -> None:
    path = DevConfig(STORE_ID, TERMINAL_ID, devices={}).write(tmp_path / "posd.toml")
    check = identity_check(path)
    assert check.status == WARN
    assert "unsigned" in check.detail and check.fix and "[identity]" in check.fix
