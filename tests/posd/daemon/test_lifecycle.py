"""`posd run` life cycle: bad config, SIGTERM mid-payment, SIGKILL and restart, offline limits
with the sync endpoint down and SIGHUP, each on a daemon of the test's own."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from drivers.card.simulator import CardReaderSimulator
from posd.journal import Journal
from tests.posd.daemon.conftest import DaemonFactory
from tests.posd.daemon.harness import REPO, wait_for
from tests.sync.faultproxy import FaultProxy


def posd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posd", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def test_bad_config_exits_2_with_the_config_check_message(tmp_path: Path) -> None:
    config = tmp_path / "posd.toml"
    config.write_text(
        "[terminal]\nstore_id = 's'\nterminal_id = 't'\nmode = 'development'\n"
        "[keys]\nprovider = 'local'\nlocal_key_file = 'k'\n"
        "[offline]\nmax_pending_count = -1\n"
    )
    run = posd("run", "--config", str(config))
    check = posd("config", "check", "--config", str(config))
    assert run.returncode == check.returncode == 2
    assert "offline.max_pending_count" in run.stderr
    assert run.stderr == check.stderr
    assert not (tmp_path / "state").exists()  # nothing started


def test_sigterm_finishes_the_payment_in_hand_and_refuses_new_ones(
    make_daemon: DaemonFactory, own_reader: CardReaderSimulator
) -> None:
    daemon = make_daemon()
    own_reader.hold_cards()
    result: list[Any] = []
    paying = threading.Thread(target=lambda: result.append(daemon.pay("term-1", timeout_s=15)))
    paying.start()
    wait_for(lambda: daemon.call("GET", "/v1/payments/term-1")[1].get("state") == "in_progress", 5)
    daemon.signal(signal.SIGTERM)
    daemon.wait_note("STOPPING=1", 5)
    status, body = daemon.pay("term-2")
    assert (status, body["error"]) == (503, "shutting_down")
    own_reader.hold_cards(False)
    paying.join(15)
    assert result[0][0] == 201
    assert daemon.stop() == 0
    with Journal.open(daemon.dir / "state") as journal:
        assert journal.find_by_client_ref("term-1") is not None
        assert journal.find_by_client_ref("term-2") is None


def test_sigkill_and_restart_lose_nothing_and_retries_get_the_first_answer(
    make_daemon: DaemonFactory, own_proxy: FaultProxy
) -> None:
    own_proxy.down()  # keep them pending across the kill
    daemon = make_daemon()
    answers = {ref: daemon.pay(ref, 100 + i)[1] for i, ref in enumerate(("k-1", "k-2", "k-3"))}
    assert all(answer["state"] == "captured" for answer in answers.values())
    daemon.kill()
    own_proxy.up()
    again = make_daemon()
    for i, (ref, answer) in enumerate(answers.items()):
        assert again.pay(ref, 100 + i) == (201, answer)
    _, flushed = again.call("POST", "/v1/sync/flush", {"timeout_s": 20})
    assert flushed["completed"], flushed
    delivered = {seen for seen in own_proxy.sent_event_ids()}
    assert {answer["event_id"] for answer in answers.values()} <= delivered
    assert again.stop() == 0


def test_offline_limits_refuse_while_the_endpoint_is_down_and_lift_when_it_returns(
    make_daemon: DaemonFactory, own_proxy: FaultProxy
) -> None:
    own_proxy.down()
    limits = {
        "max_payment_amount": 3000,
        "max_pending_amount": 5000,
        "max_pending_count": 2,
        "max_pending_age_seconds": 0,
    }
    daemon = make_daemon(offline=limits)

    def refusal(ref: str, amount: int) -> str:
        status, body = daemon.pay(ref, amount)
        assert status == 422, body
        return str(body["error"])

    assert refusal("lim-0", 3500) == "offline_amount_limit"
    assert daemon.pay("lim-1", 2000)[0] == 201
    assert daemon.pay("lim-2", 2000)[0] == 201
    assert refusal("lim-3", 2000) == "offline_pending_amount_limit"
    assert refusal("lim-3", 500) == "offline_pending_count_limit"
    headroom = daemon.call("GET", "/v1/status")[1]["limits"]
    assert headroom["max_pending_count"] == {"limit": 2, "headroom": 0}
    assert headroom["max_pending_amount"]["headroom_by_currency"] == {"EUR": 1000}

    # SIGHUP: room for more records, but no record may wait longer than a moment. The factory
    # writes the changed config over the running daemon's (same directory), not started.
    make_daemon(
        start=False, offline={**limits, "max_pending_count": 10, "max_pending_age_seconds": 0.2}
    )
    daemon.signal(signal.SIGHUP)
    wait_for(
        lambda: daemon.call("GET", "/v1/status")[1]["limits"]["max_pending_count"]["limit"] == 10, 5
    )
    wait_for(lambda: daemon.call("GET", "/v1/status")[1]["pending"]["oldest_age_seconds"] > 0.3, 5)
    assert refusal("lim-3", 500) == "offline_pending_age_limit"
    wait_for(lambda: daemon.call("GET", "/v1/status")[1]["link"]["state"] == "offline", 5)

    own_proxy.up()
    status, flushed = daemon.call("POST", "/v1/sync/flush", {"timeout_s": 20})
    assert flushed["completed"], flushed
    status, paid = daemon.pay("lim-3", 500)
    assert status == 201, paid
    assert daemon.stop() == 0
