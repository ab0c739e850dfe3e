"""The CLI's "Seen" fixes that need no AWS: one-line failures, --version, lazy imports,
progress bars that let log lines through, journald priorities, human formatting, the cause
of a failed device open."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from demo.devconfig import DevConfig
from posd.cli.humanize import amounts, human, size
from posd.cli.main import main
from posd.cli.progress import Progress
from posd.logs import configure_logging
from tests.posd.cli.test_journal_cmd import demo
from tests.repo import REPO_ROOT

ROOT = REPO_ROOT


def _posd(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posd", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )


def test_demo_keep_state_on_a_file_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    done = demo("--keep-state", str(a_file))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "not a directory" in done.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("posd ")
    assert main(["--version", "--json"]) == 0
    assert "version" in json.loads(capsys.readouterr().out)


def test_help_and_the_parser_load_neither_boto3_nor_the_demo() -> None:
    probe = (
        "import sys\n"
        "from posd.cli.main import build_parser\n"
        "build_parser()\n"
        "heavy = [m for m in ('boto3', 'botocore', 'moto', 'demo', 'posd.journal.store',"
        " 'drivers.card.simulator', 'serial', 'usb') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.stdout.strip() == "[]", done.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_line_never_lands_inside_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    configure_logging("info", force_json=True)
    bar = Progress("delivering")
    bar(3, 10)
    structlog.get_logger("test").warning("sync.offline", error="refused")
    bar(5, 10)
    bar.close()
    text = terminal.getvalue()
    segments = [s for line in text.split("\n") for s in line.split("\r")]
    log_segments = [s for s in segments if "sync.offline" in s]
    assert log_segments and all("|" not in s and "%" not in s for s in log_segments)
    assert text.endswith("\n")  # a bar that did not finish still ends its line
    assert "rec/s" in text  # rate shown


def test_a_closed_bar_is_never_drawn_again() -> None:
    terminal = _Terminal()
    bar = Progress("receiving", stream=terminal)
    bar(10, 10)
    drawn = terminal.getvalue()
    bar(10, 10)
    bar(11, 11)
    assert terminal.getvalue() == drawn


def test_logs_carry_their_priority_under_journald(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    configure_logging("info", force_json=True)
    log = structlog.get_logger("test")
    log.error("daemon.thread_dead")
    log.info("daemon.ready")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("<3>{") and "daemon.thread_dead" in lines[0]
    assert lines[1].startswith("<6>{")
    monkeypatch.delenv("JOURNAL_STREAM")
    configure_logging("info", force_json=True)
    log.error("x")
    line = capsys.readouterr().err.strip()
    assert line.startswith("{") and "_syslog_priority" not in line


def test_human_values() -> None:
    assert amounts({"EUR": 743224}) == "EUR 7,432.24"
    assert amounts({"JPY": 1250, "KWD": 1234}) == "JPY 1,250, KWD 1.234"
    assert size(3 * 1024 * 1024) == "3.0 MiB" and size(512) == "512 B"
    assert human(True) == "yes" and human(None) == "-"
    assert human({"card_payment": 160}) == "card_payment 160"


def test_a_failed_open_keeps_its_cause(tmp_path: Path) -> None:
    missing = tmp_path / "ttyUSB9"
    config = DevConfig(
        "s",
        "t",
        keys={"provider": "local", "local_key_file": "k"},
        devices={"card_reader": {"driver": "serial", "port": missing}},
    ).write(tmp_path / "posd.toml")
    done = _posd("devices", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["devices"][0]
    assert row["state"] == "not_found"
    assert "No such file or directory" in row["error"]


def test_card_reader_test_is_a_real_masked_read() -> None:
    from tests.cards import TEST_PANS

    done = _posd(
        "devices", "test", "card_reader", "--config", str(ROOT / "config" / "dev.toml"), "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "card_read"
    assert result["masked_pan"].count("*") >= 6
    assert result["test_amount"] == "EUR 0.01"
    assert not any(pan in done.stdout + done.stderr for pan in TEST_PANS)
