"""`posd status` is the lane's truth (issue 22): over a real `posd run` and its socket, the
first line says whether the lane can sell, the refusal every payment gets and its cause, and
the exit code tells scripts the same (0 ready, 1 degraded, 3 not running, 4 cannot sell,
5 running but not asked)."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from demo.devconfig import render_toml
from posd.api_client import STATUS_ANSWER_TIMEOUT_S
from posd.cli.status_verdict import (
    EXIT_CANNOT_SELL,
    EXIT_DEGRADED,
    EXIT_NOT_ASKED,
    EXIT_NOT_RUNNING,
    EXIT_READY,
    JOURNALCTL,
)
from tests.posd.daemon.conftest import DaemonFactory
from tests.posd.daemon.harness import REPO, Daemon, wait_for
from tests.sync.faultproxy import FaultProxy
from tests.sync.test_damage import corrupt_a_page

DAMAGED_PAYMENTS = 40
DAMAGED_SEQ = 20
HUGE_RESERVE = 10**18  # more than any disk has free (and no card number: Luhn sum 1)
MISSING_KMS_KEY = "alias/posd-test-no-such-key"
# Over what the same command takes without asking (start-up and the journal read, slow on
# a loaded host): the 2 s answer timeout and some slack, far under the 10 s it was.
HUNG_SLACK_S = 1.5
SYNC_STATUS_SLACK_S = 6.0  # the CLI's start and a read of the journal, on a busy machine


def posd_status(*args: str) -> tuple[int, str, float]:
    """`posd status ARGS` as a technician runs it: exit code, stdout, seconds taken."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "posd", "status", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, time.monotonic() - started


def status_json(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    code, out, _ = posd_status("--config", str(daemon.config), "--json")
    return code, json.loads(out)


def first_line(daemon: Daemon) -> tuple[int, str]:
    """The `lane:` entry, its wrapped continuation lines joined (tables fit 80 columns)."""
    code, out, _ = posd_status("--config", str(daemon.config))
    first, *rest = out.splitlines()
    continued = itertools.takewhile(lambda line: line.startswith(" "), rest)
    return code, " ".join([first, *(line.strip() for line in continued)])


def test_a_ready_lane_exits_0_and_says_so(make_daemon: DaemonFactory) -> None:
    daemon = make_daemon()
    assert daemon.pay("truth-ready-1")[0] == 201
    code, line = first_line(daemon)
    assert code == EXIT_READY
    assert line.startswith("lane:") and line.endswith(" READY: payments are accepted")


def test_disk_below_reserve_is_its_own_refusal_and_status_cannot_sell(
    make_daemon: DaemonFactory,
) -> None:
    daemon = make_daemon(journal={"min_free_bytes": HUGE_RESERVE})
    status, body = daemon.pay("truth-disk-1")
    assert (status, body["error"]) == (507, "disk_below_reserve")
    assert "bytes free" in body["message"] and str(HUGE_RESERVE) in body["message"]
    assert "journal is full" not in body["message"]
    code, answer = status_json(daemon)
    assert code == EXIT_CANNOT_SELL and answer["verdict"] == "cannot_sell"
    assert answer["refusing"]["error"] == "disk_below_reserve"
    # (The CLI redacts any run of 13+ digits as a possible card number: the reserve too.)
    assert "bytes free" in answer["refusing"]["message"]
    assert "under the reserve" in answer["refusing"]["message"]
    code, line = first_line(daemon)
    assert "CANNOT SELL" in line and "disk_below_reserve" in line
    notes = daemon.read_notes(0.5)
    assert any("REFUSING PAYMENTS: disk_below_reserve" in note for note in notes), notes


def test_a_missing_kms_key_is_no_data_key_with_the_kms_error(
    make_daemon: DaemonFactory, own_proxy: FaultProxy
) -> None:
    daemon = make_daemon(start=False)
    document = tomllib.loads(daemon.config.read_text())
    document["keys"] = {"provider": "kms", "kms_key_id": MISSING_KMS_KEY}
    document["aws"]["kms_endpoint_url"] = own_proxy.url
    daemon.config.write_text(render_toml(document))
    daemon.start()
    status, body = daemon.pay("truth-key-1")
    assert (status, body["error"]) == (503, "no_data_key")
    assert "KMS GenerateDataKey failed" in body["message"]
    code, answer = status_json(daemon)
    assert code == EXIT_CANNOT_SELL
    assert answer["refusing"]["error"] == "no_data_key"
    assert "KMS GenerateDataKey failed" in answer["refusing"]["message"]
    assert "KMS GenerateDataKey failed" in (answer["key_error"] or "")
    code, out, _ = posd_status("--config", str(daemon.config))
    assert "no_data_key" in out.splitlines()[0]
    assert "key service failing: KMS GenerateDataKey failed" in out


def test_a_device_down_is_degraded_but_selling(make_daemon: DaemonFactory, own_reader: Any) -> None:
    daemon = make_daemon()
    own_reader.unplug()
    try:
        wait_for(lambda: daemon.call("GET", "/v1/status")[1]["state"] == "degraded", 10)
        code, line = first_line(daemon)
        assert code == EXIT_DEGRADED
        assert "SELLING, DEGRADED" in line and "card_reader down" in line
    finally:
        own_reader.replug()


def test_not_running_exits_3_with_the_journals_figures_and_where_to_look(
    make_daemon: DaemonFactory,
) -> None:
    daemon = make_daemon()
    for index in range(3):
        assert daemon.pay(f"truth-stopped-{index}")[0] == 201
    wait_for(lambda: daemon.call("GET", "/v1/status")[1]["pending"]["count"] == 0, 20)
    daemon.stop()
    code, answer = status_json(daemon)
    assert code == EXIT_NOT_RUNNING and answer["verdict"] == "not_running"
    assert answer["delivered"] >= 3 and answer["link"]["last_delivery"] is not None
    assert answer["read_logs"] == JOURNALCTL
    code, out, _ = posd_status("--config", str(daemon.config))
    assert code == EXIT_NOT_RUNNING
    assert out.startswith("lane:") and "NOT RUNNING" in out.splitlines()[0]
    assert JOURNALCTL in out and "last delivery:     never" not in out


def test_a_hung_daemon_answers_from_the_state_dir_within_seconds(
    make_daemon: DaemonFactory,
) -> None:
    daemon = make_daemon()
    assert daemon.pay("truth-hung-1")[0] == 201
    assert daemon.proc is not None
    daemon.signal(signal.SIGSTOP)
    try:
        code, out, took = posd_status("--config", str(daemon.config))
        *_, baseline = posd_status("--state-dir", str(daemon.dir / "state"))
        assert took < baseline + STATUS_ANSWER_TIMEOUT_S + HUNG_SLACK_S, (took, baseline)
        assert code == EXIT_CANNOT_SELL
        assert f"posd (pid {daemon.proc.pid}) did not answer" in out.splitlines()[0]
        assert "pending:" in out
    finally:
        daemon.signal(signal.SIGCONT)


def test_state_dir_is_accepted(make_daemon: DaemonFactory) -> None:
    daemon = make_daemon()
    assert daemon.pay("truth-dir-1")[0] == 201
    state_dir = str(daemon.dir / "state")
    code, out, _ = posd_status("--state-dir", state_dir, "--json")
    answer = json.loads(out)
    assert code == EXIT_NOT_ASKED and answer["pid"] == daemon.proc.pid  # type: ignore[union-attr]
    daemon.stop()
    code, out, _ = posd_status("--state-dir", state_dir)
    assert code == EXIT_NOT_RUNNING and "NOT RUNNING" in out.splitlines()[0]
    assert "delivered:" in out


def test_state_dir_and_config_are_one_or_the_other(tmp_path: Path) -> None:
    code, _, _ = posd_status("--state-dir", str(tmp_path), "--config", str(tmp_path / "x"))
    assert code == 2


def test_a_stopped_daemon_on_a_damaged_journal_shows_its_deliveries_and_damage(
    make_daemon: DaemonFactory,
) -> None:
    """Found by the issue: `last delivery: never` although 398 were delivered, and unreadable
    rows only in `--json`."""
    daemon = make_daemon()
    for index in range(DAMAGED_PAYMENTS):
        assert daemon.pay(f"truth-damaged-{index}")[0] == 201
    wait_for(lambda: daemon.call("GET", "/v1/status")[1]["pending"]["count"] == 0, 30)
    daemon.stop()
    corrupt_a_page(daemon.config, DAMAGED_SEQ)
    code, answer = status_json(daemon)
    assert code == EXIT_NOT_RUNNING and answer["unreadable"] > 0
    assert answer["delivered"] > 0
    code, out, _ = posd_status("--config", str(daemon.config))
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert lines["last delivery"].strip() != "never", out
    assert "unreadable (see: posd journal verify)" in lines["needs a person"], out


def test_sync_status_does_not_hang_on_a_stopped_daemon_either(make_daemon: DaemonFactory) -> None:
    """`posd sync status` waits as long as `posd status` does, then reads the state dir."""
    daemon = make_daemon()
    assert daemon.pay("truth-hung-sync-1")[0] == 201
    daemon.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "posd", "sync", "status", "--config", str(daemon.config)],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
        took = time.monotonic() - started
    finally:
        daemon.signal(signal.SIGCONT)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert took < STATUS_ANSWER_TIMEOUT_S + SYNC_STATUS_SLACK_S, took
    assert "did not answer" in done.stderr and "from the state dir" in done.stderr
    assert "pending:" in done.stdout
