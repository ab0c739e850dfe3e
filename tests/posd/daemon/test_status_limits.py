"""`posd status` says when an offline limit is used up (issue 26's finding): over a real
`posd run` with the link down, the first line and the exit code tell that every payment is
refused (the count or age limit), naming the config key and the fix that works, or that
only a little more can be taken offline (a currency's pending amount)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

from posd.cli.status_verdict import EXIT_CANNOT_SELL, EXIT_DEGRADED
from tests.posd.daemon.conftest import DaemonFactory
from tests.posd.daemon.harness import REPO, Daemon, wait_for
from tests.posd.daemon.test_status_truth import first_line, status_json
from tests.sync.faultproxy import FaultProxy

RELOAD = "systemctl reload posd"
DOCTOR_CHECK = "offline limits"
NO_LIMITS = {
    "max_payment_amount": 0,
    "max_pending_amount": 0,
    "max_pending_count": 0,
    "max_pending_age_seconds": 0,
}


def _offline_daemon(make_daemon: DaemonFactory, proxy: FaultProxy, **limits: Any) -> Daemon:
    proxy.down()
    return make_daemon(offline={**NO_LIMITS, **limits})


def doctor_check(daemon: Daemon, name: str) -> dict[str, Any]:
    """`posd doctor --json`'s check `name` as a technician runs it (no AWS credentials here:
    the checks that need them are skipped, which this one does not)."""
    done = subprocess.run(
        [sys.executable, "-m", "posd", "doctor", "--config", str(daemon.config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert "Traceback" not in done.stderr, done.stderr
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}
    return dict(checks[name])


def _link_offline(daemon: Daemon) -> None:
    wait_for(lambda: daemon.call("GET", "/v1/status")[1]["link"]["state"] == "offline", 10)


def test_a_used_up_count_limit_cannot_sell_and_names_the_key_and_the_fix(
    make_daemon: DaemonFactory, own_proxy: FaultProxy
) -> None:
    daemon = _offline_daemon(make_daemon, own_proxy, max_pending_count=2)
    assert daemon.pay("cap-1")[0] == 201
    assert daemon.pay("cap-2")[0] == 201
    assert daemon.pay("cap-3")[1]["error"] == "offline_pending_count_limit"
    _link_offline(daemon)

    code, line = first_line(daemon)
    assert code == EXIT_CANNOT_SELL, line
    assert "CANNOT SELL" in line and "offline_pending_count_limit" in line
    assert "[offline] max_pending_count" in line
    assert "link" in line and RELOAD in line
    code, answer = status_json(daemon)
    assert code == EXIT_CANNOT_SELL and answer["verdict"] == "cannot_sell"
    assert answer["refusing"]["error"] == "offline_pending_count_limit"
    assert "[offline] max_pending_count" in answer["headline"]
    # `systemctl status posd` shows it too (systemd's STATUS=).
    refusing = "REFUSING PAYMENTS: offline_pending_count_limit"
    wait_for(lambda: any(refusing in note for note in daemon.read_notes(0.1)), 5)

    check = doctor_check(daemon, DOCTOR_CHECK)
    assert check["status"] == "fail" and "offline_pending_count_limit" in check["detail"]
    assert RELOAD in check["fix"] and "[offline] max_pending_count" in check["fix"]

    # The fix it names works: a raised limit and a reload (SIGHUP) sell again, link still down.
    make_daemon(start=False, offline={**NO_LIMITS, "max_pending_count": 10})
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: status_json(daemon)[0] == EXIT_DEGRADED, 10)
    assert doctor_check(daemon, DOCTOR_CHECK)["status"] == "ok"
    assert daemon.pay("cap-3")[0] == 201


def test_a_used_up_age_limit_cannot_sell(make_daemon: DaemonFactory, own_proxy: FaultProxy) -> None:
    daemon = _offline_daemon(make_daemon, own_proxy, max_pending_age_seconds=0.2)
    assert daemon.pay("age-1")[0] == 201
    wait_for(lambda: daemon.call("GET", "/v1/status")[1]["pending"]["oldest_age_seconds"] > 0.3, 5)
    assert daemon.pay("age-2")[1]["error"] == "offline_pending_age_limit"
    code, line = first_line(daemon)
    assert code == EXIT_CANNOT_SELL, line
    assert "offline_pending_age_limit" in line and "[offline] max_pending_age_seconds" in line


def test_little_pending_amount_headroom_is_degraded_with_what_is_left(
    make_daemon: DaemonFactory, own_proxy: FaultProxy
) -> None:
    daemon = _offline_daemon(
        make_daemon, own_proxy, max_payment_amount=3000, max_pending_amount=5000
    )
    assert daemon.pay("amt-1", 2000)[0] == 201
    code, line = first_line(daemon)
    assert "offline limit" not in line, line  # 30.00 left: any payment the lane takes fits
    assert daemon.pay("amt-2", 2000)[0] == 201
    _link_offline(daemon)
    code, line = first_line(daemon)
    assert code == EXIT_DEGRADED, line
    assert line.split("lane:", 1)[1].strip().startswith("SELLING, DEGRADED"), line
    assert "offline limit: only EUR 10.00 more can be taken offline" in line, line
    assert "[offline] max_pending_amount" in line
    check = doctor_check(daemon, DOCTOR_CHECK)
    assert check["status"] == "warn" and "EUR 10.00" in check["detail"], check
