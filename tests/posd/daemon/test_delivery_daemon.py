"""`posd sync run`, the delivery daemon, as a real process beside `posd run`: one per state
dir, never a journal of its own making, and what `posd status` says when it is gone."""

from __future__ import annotations

import json
import subprocess
import sys

from demo.pan_scan import scan_process
from drivers.card.deck import TEST_PANS
from posd.cli.status_verdict import EXIT_DEGRADED, EXIT_READY
from tests.posd.daemon.conftest import DaemonFactory
from tests.posd.daemon.harness import REPO, wait_for
from tests.posd.daemon.test_status_truth import status_json
from tests.sync.faultproxy import FaultProxy

CARD_PAYMENTS = 5


def sync_run(config: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posd", "sync", "run", "--config", config],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def test_a_second_delivery_daemon_is_refused_naming_the_first(make_daemon: DaemonFactory) -> None:
    daemon = make_daemon()
    assert daemon.sync_proc is not None
    second = sync_run(str(daemon.config))
    assert second.returncode == 1, second.stderr
    assert f"posd sync run (pid {daemon.sync_proc.pid})" in second.stderr
    assert "systemctl status posd-sync" in second.stderr
    assert "Traceback" not in second.stderr
    assert daemon.stop() == 0 and daemon.delivery_code == 0


def test_delivery_never_makes_a_journal_of_its_own(make_daemon: DaemonFactory) -> None:
    daemon = make_daemon(start=False)  # no `posd run` yet: no journal
    done = sync_run(str(daemon.config))
    assert done.returncode == 1, done.stderr  # systemd tries again (Restart=on-failure)
    assert "no journal in" in done.stderr and "posd run" in done.stderr
    assert not (daemon.dir / "state" / "journal.db").exists()


def test_status_says_when_delivery_is_not_running_and_payments_go_on(
    make_daemon: DaemonFactory,
) -> None:
    daemon = make_daemon()
    assert daemon.pay("before-kill")[0] == 201
    wait_for(lambda: status_json(daemon)[0] == EXIT_READY, 10)
    _, status = status_json(daemon)
    assert status["delivery"]["running"] is True
    assert status["delivery"]["pid"] == daemon.sync_proc.pid  # type: ignore[union-attr]

    daemon.kill_delivery()
    wait_for(lambda: status_json(daemon)[0] == EXIT_DEGRADED, 10)
    _, status = status_json(daemon)
    assert status["delivery"]["running"] is False
    assert "delivery not running" in status["headline"]
    assert "systemctl start posd-sync" in status["headline"]
    assert daemon.pay("while-delivery-is-down")[0] == 201  # capture never needs delivery
    text = subprocess.run(
        [sys.executable, "-m", "posd", "status", "--config", str(daemon.config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    ).stdout
    assert "NOT RUNNING" in text
    # A flush cannot deliver without it: it ends at once and says why.
    status_code, flushed = daemon.call("POST", "/v1/sync/flush", {"timeout_s": 30})
    assert status_code == 200 and not flushed["completed"]
    assert flushed["waited_seconds"] < 5 and "not running" in flushed["last_error"]

    daemon.start_delivery()  # and what was taken meanwhile is delivered
    status_code, flushed = daemon.call("POST", "/v1/sync/flush", {"timeout_s": 30})
    assert status_code == 200 and flushed["completed"], json.dumps(flushed)
    assert daemon.stop() == 0


def test_sync_flush_with_only_the_delivery_daemon_waits_for_it(
    make_daemon: DaemonFactory, own_proxy: FaultProxy
) -> None:
    own_proxy.down()  # payments are journaled, nothing delivered yet
    daemon = make_daemon()
    for index in range(3):
        assert daemon.pay(f"flush-beside-{index}")[0] == 201
    daemon.capture.terminate()
    assert daemon.capture.wait() == 0  # capture stopped; delivery goes on
    own_proxy.up()
    done = subprocess.run(
        [sys.executable, "-m", "posd", "sync", "flush", "--config", str(daemon.config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["via"] == "delivery daemon" and result["completed"] and result["pending"] == 0
    assert daemon.sync_proc is not None and daemon.sync_proc.poll() is None  # it did the work
    daemon.delivery.terminate()
    assert daemon.delivery.wait() == 0


def test_the_delivery_daemon_never_holds_a_clear_card_number(make_daemon: DaemonFactory) -> None:
    """Capture reads the card (a clear serial reader here: the PAN is in its memory for the
    payment); delivery forwards sealed records only, so no deck PAN is anywhere in its memory
    after it delivered card payments."""
    daemon = make_daemon()
    for index in range(CARD_PAYMENTS):
        assert daemon.pay(f"clear-card-{index}")[0] == 201
    status_code, flushed = daemon.call("POST", "/v1/sync/flush", {"timeout_s": 30})
    assert status_code == 200 and flushed["completed"], flushed
    assert daemon.sync_proc is not None
    pans = [pan for _, pan in TEST_PANS]
    assert scan_process(daemon.sync_proc.pid, pans) == 0
    assert daemon.stop() == 0
