"""The technician's toolkit against a real journal and the moto server on loopback:
`posd status` and `journal list` without a daemon, `doctor`, and `diag bundle` (scanned for
card numbers, key material and credentials)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig, simulated_palm
from posd.cli.main import main
from posd.cli.status_verdict import EXIT_NOT_RUNNING
from posd.journal import Journal
from tests.cards import TEST_PANS
from tests.sync.conftest import CLI_RECORDS as RECORDS

DISTINCT_SECRET = "diagSecretAccessKey0000000000000000000042"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_journal_list_by_state_never_shows_secrets(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = config_file.parent / "state"
    with Journal.open(state) as journal:
        journal.quarantine(4, "MalformedDetail: injected")
    code, result = _run(
        capsys, "journal", "list", "--state", "quarantined", "--state-dir", str(state)
    )
    assert code == 0
    assert [(r["seq"], r["state"], r["last_error"]) for r in result["records"]] == [
        (4, "quarantined", "MalformedDetail: injected")
    ]
    code, result = _run(capsys, "journal", "list", "--limit", "3", "--config", str(config_file))
    assert [r["seq"] for r in result["records"]] == [RECORDS, RECORDS - 1, RECORDS - 2]
    assert set(result["records"][0]) == {
        "seq", "kind", "captured_at", "state", "attempts", "last_error", "delivered_at", "meta",
        "damaged",
    }  # fmt: skip
    assert result["records"][0]["damaged"] is None
    assert main(["journal", "list", "--state-dir", str(state)]) == 0
    human = capsys.readouterr().out
    assert "EUR 5.00" in human and "SEQ" in human
    assert not any(pan in human for pan in TEST_PANS)


def test_status_without_a_daemon_reads_the_state_dir(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = _run(capsys, "status", "--config", str(config_file))
    assert code == EXIT_NOT_RUNNING
    assert result["daemon"].startswith("not running")
    assert result["pending"]["count"] == RECORDS
    assert main(["status", "--config", str(config_file)]) == EXIT_NOT_RUNNING
    human = capsys.readouterr().out
    assert "EUR 60.00" in human and "not running" in human


def test_doctor_checks_each_thing_with_timings_and_fixes(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = _run(capsys, "doctor", "--config", str(config_file))
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["config"]["status"] == "ok"
    assert checks["aws credentials"]["status"] == "ok"
    assert "env" in checks["aws credentials"]["detail"]
    for reach in ("kms reach", "events reach"):
        assert checks[reach]["status"] == "ok", checks[reach]
        assert "127.0.0.1" in checks[reach]["detail"] and "TCP" in checks[reach]["detail"]
    assert checks["clock"]["status"] == "ok"
    # No devices and a development key provider: warnings, never failures.
    assert checks["devices"]["status"] == "warn"
    assert checks["kms key"]["status"] == "warn"
    assert code == (0 if result["ok"] else 1)
    assert all(c["fix"] for c in result["checks"] if c["status"] != "ok")


def test_doctor_fails_on_an_unreachable_endpoint(
    config_file: Path, cli_config: DevConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    cli_config.amended(aws={"endpoint_url": f"http://127.0.0.1:{port}"}).write(config_file)
    code, result = _run(capsys, "doctor", "--config", str(config_file))
    checks = {c["name"]: c for c in result["checks"]}
    assert code == 1 and not result["ok"]
    assert checks["events reach"]["status"] == "fail"
    assert "TCP" in checks["events reach"]["detail"]


def _bcd(pan: str) -> bytes:
    digits = pan + ("F" if len(pan) % 2 else "")
    return bytes.fromhex(digits)


def test_diag_bundle_holds_no_card_data_keys_or_credentials(
    config_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DISTINCT_SECRET)
    bundle = tmp_path / "diag.tar.gz"
    code, _ = _run(capsys, "diag", "bundle", "-o", str(bundle), "--config", str(config_file))
    assert code == 0
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        blobs = {}
        for name in names:
            member = tar.extractfile(name)
            if member is not None:
                blobs[name] = member.read()
    assert {"config.json", "versions.json", "status.json", "doctor.json"} <= {
        Path(n).name for n in names
    }
    assert json.loads(blobs["posd-diag/status.json"])["pending"]["count"] == RECORDS
    key_material = (config_file.parent / "kek.b64").read_bytes().strip()
    for name, data in blobs.items():
        for pan in TEST_PANS:
            assert pan.encode() not in data, name
            assert _bcd(pan) not in data, name
        assert key_material not in data, name
        assert DISTINCT_SECRET.encode() not in data, name


PALM_TOKENS = ("tok-diag-alice-7f3a9c", "tok-diag-bob-51e2d0")


def test_diag_bundle_leaves_palm_identities_out_of_the_config(
    config_file: Path, cli_config: DevConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Palm credential tokens are config values under innocent keys (the enrolled labels)."""
    palm = simulated_palm({"alice": PALM_TOKENS[0], "bob": PALM_TOKENS[1]}, present="alice")
    cli_config.amended(devices={"palm_scanner": palm}).write(config_file)
    bundle = tmp_path / "diag.tar.gz"
    code, _ = _run(capsys, "diag", "bundle", "-o", str(bundle), "--config", str(config_file))
    assert code == 0
    with tarfile.open(bundle) as tar:
        config_text = tar.extractfile("posd-diag/config.json").read().decode()  # type: ignore[union-attr]
        blobs = [tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
    assert "palm_scanner" in config_text and "identities" in config_text  # the shape stays
    for token in PALM_TOKENS:
        assert not any(token.encode() in blob for blob in blobs), token
