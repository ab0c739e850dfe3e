"""`posd sync status|flush|retry-quarantined` against a real journal and the moto server."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig
from posd.cli.main import main
from posd.journal import Journal
from tests.repo import REPO_ROOT
from tests.sync.conftest import CLI_RECORDS as RECORDS
from tests.sync.conftest import Route, event_ids, receive_all, record_events
from wire.events import CHECKPOINT_DETAIL_TYPE


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_status_flush_status(
    config_file: Path, capsys: pytest.CaptureFixture[str], route: Route, sqs_client: Any
) -> None:
    code, before = _run(capsys, "sync", "status", "--config", str(config_file))
    assert code == 0
    assert before["pending"] == RECORDS
    assert before["delivered"] == 0
    assert before["pending_amount_by_currency"] == {"EUR": RECORDS * 500}

    code, flushed = _run(capsys, "sync", "flush", "--config", str(config_file))
    assert code == 0
    assert flushed["completed"]
    assert flushed["delivered"] == RECORDS

    code, after = _run(capsys, "sync", "status", "--config", str(config_file))
    assert (after["pending"], after["delivered"]) == (0, RECORDS)
    # the records, and the checkpoint the flush cut over all of them
    events = receive_all(sqs_client, route.queue_url, RECORDS + 1)
    assert len(set(event_ids(record_events(events)))) == RECORDS
    (checkpoint,) = (e["detail"] for e in events if e["detail-type"] == CHECKPOINT_DETAIL_TYPE)
    assert (checkpoint["first_seq"], checkpoint["last_seq"]) == (1, RECORDS)


def test_retry_quarantined(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Journal.open(config_file.parent / "state") as journal:
        journal.quarantine(3, "AccessDeniedException: test")
        journal.quarantine(5, "AccessDeniedException: test")
    code, result = _run(capsys, "sync", "retry-quarantined", "--config", str(config_file))
    assert code == 0
    assert result == {"returned_to_pending": 2, "refused": []}
    code, status = _run(capsys, "sync", "status", "--config", str(config_file))
    assert (status["pending"], status["quarantined"]) == (RECORDS, 0)


def test_human_output_and_bad_input(
    config_file: Path, cli_config: DevConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "status", "--config", str(config_file)]) == 0
    assert "pending" in capsys.readouterr().out
    assert main(["sync", "flush", "--timeout", "0", "--config", str(config_file)]) == 2
    assert "--timeout" in capsys.readouterr().err
    empty = replace(cli_config, state_dir="nowhere").write(tmp_path / "other.toml")
    assert main(["sync", "status", "--config", str(empty)]) == 2
    assert "no journal" in capsys.readouterr().err


def _posd(config_dir: Path, *argv: str, env: dict[str, str] | None = None) -> Any:
    """`python -m posd ARGV` in a child process, with this tree on the path."""
    import os
    import subprocess
    import sys

    root = REPO_ROOT
    base = {**(env if env is not None else os.environ), "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "posd", *argv],
        capture_output=True,
        text=True,
        env=base,
        cwd=config_dir,
        timeout=120,
    )


def _no_credentials_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_flush_without_credentials_is_misconfigured_at_once(
    config_file: Path, tmp_path: Path
) -> None:
    done = _posd(
        tmp_path,
        "sync",
        "flush",
        "--config",
        str(config_file),
        "--json",
        env=_no_credentials_env(tmp_path),
    )
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["state"] == "misconfigured"
    assert "NoCredentialsError" in result["last_error"]
    assert result["elapsed_seconds"] < 60  # not the 300 s default timeout
    assert result["pending"] == RECORDS


@pytest.mark.parametrize("how", ["env", "config"])
def test_an_unknown_profile_is_one_line_and_exit_2(
    config_file: Path, cli_config: DevConfig, tmp_path: Path, how: str
) -> None:
    env = _no_credentials_env(tmp_path)
    if how == "env":
        env["AWS_PROFILE"] = "nope"
    else:
        cli_config.amended(aws={"profile": "nope"}).write(config_file)
    for command in (("sync", "flush"), ("config", "check")):
        done = _posd(tmp_path, *command, "--config", str(config_file), env=env)
        assert done.returncode == 2, (command, done.stderr)
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "nope" in lines[0] and "aws.profile" in lines[0]


def test_no_region_anywhere_is_a_config_error(
    config_file: Path, cli_config: DevConfig, tmp_path: Path
) -> None:
    env = _no_credentials_env(tmp_path)
    without_region = {key: value for key, value in cli_config.aws.items() if key != "region"}
    replace(cli_config, aws=without_region).write(config_file)
    done = _posd(tmp_path, "config", "check", "--config", str(config_file), env=env)
    assert done.returncode == 2
    assert "aws.region" in done.stderr and "Traceback" not in done.stderr
    env["AWS_REGION"] = "eu-central-1"  # the environment decides when the file does not
    done = _posd(tmp_path, "config", "check", "--config", str(config_file), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["aws_region"] == "eu-central-1"


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "soon"])
def test_flush_timeout_must_be_finite_and_positive(
    config_file: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    assert main(["sync", "flush", "--timeout", value, "--config", str(config_file)]) == 2
    assert "--timeout" in capsys.readouterr().err


def test_status_from_the_state_dir_shows_leases_errors_and_last_delivery(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    state = config_file.parent / "state"
    with Journal.open(state) as journal:
        lease = journal.lease(2, time.time(), 2.0)
        journal.schedule_retry([lease.records[0].seq], time.time(), "transport: refused")
        journal.lease(1, time.time(), 2.0)
        journal.quarantine(7, "MalformedDetail: injected")
    code, result = _run(capsys, "sync", "status", "--state-dir", str(state))
    assert code == 0
    assert result["source"] == "journal"
    assert result["leased"] == 2
    assert result["last_error"] == "transport: refused"
    assert result["last_delivery"] is None
    assert result["quarantined"] == 1
    assert main(["sync", "status", "--state-dir", str(state)]) == 0
    human = capsys.readouterr().out
    assert "EUR 55.00" in human  # 11 pending of 500 minor units: the currency's decimals
    assert "None" not in human and "True" not in human and "{" not in human
    assert "posd journal list --state quarantined" in human

    # The leases run out (2 s) and the flush sends them too.
    code, flushed = _run(capsys, "sync", "flush", "--config", str(config_file), "--timeout", "60")
    assert code == 0 and flushed["completed"]
    code, after = _run(capsys, "sync", "status", "--state-dir", str(state))
    assert after["leased"] == 0 and after["last_delivery"] is not None
