"""PutEvents has no dry run: doctor's `delivery` is the running daemon's link. A daemon
started on a bus that does not exist is `misconfigured`; the technician corrects the file,
doctor still FAILs delivery (the delivery daemon runs on what it read) and says to reload it;
after the reload the link delivers and doctor says OK."""

from __future__ import annotations

import grp
import json
import os
import signal
import time
from pathlib import Path

from demo.devconfig import DevConfig
from posd.api_client import DaemonClient
from posd.doctor.checks import FAIL, OK, WARN
from posd.journal import Journal
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from sync.pacing.link import MISCONFIGURED
from tests.cards import STORE_ID, TERMINAL_ID, VISA_TEST_PAN
from tests.posd.daemon.harness import FAST_SYNC, Daemon
from tests.posd.doctor.conftest import Doctor, install

PAYMENTS = 3
LINK_TIMEOUT_S = 20.0
POLL_S = 0.1


def record_payments(directory: Path) -> None:
    with (
        Journal.open(directory / "state") as journal,
        RotatingKeyProvider(LocalKeySource(directory / "kek.b64", create=True)) as keys,
    ):
        assert keys.wait_ready(5)
        recorder = Recorder(journal, keys, STORE_ID, TERMINAL_ID)
        for _ in range(PAYMENTS):
            meta = {"amount": 500, "currency": "EUR"}
            recorder.record("payment.card", meta, json.dumps({"pan": VISA_TEST_PAN}).encode())


def wait_link(client: DaemonClient, done: str) -> dict[str, object]:
    deadline = time.monotonic() + LINK_TIMEOUT_S
    while True:
        status = client.status()
        link = dict(status["link"])
        if (link["state"] == MISCONFIGURED) == (done == MISCONFIGURED) and (
            done == MISCONFIGURED or status["pending"]["count"] == 0
        ):
            return link
        assert time.monotonic() < deadline, status
        time.sleep(POLL_S)


def test_a_daemon_refused_by_its_bus_fails_delivery_until_restarted(
    tmp_path: Path, lane: DevConfig, bus_name: str, run_doctor: Doctor
) -> None:
    own_group = grp.getgrgid(os.getgid()).gr_name  # the socket's group must exist
    lane = lane.amended(sync=FAST_SYNC, api={"socket_group": own_group})
    path = install(lane, tmp_path)
    _, checks = run_doctor(path)
    assert checks["delivery"]["status"] == WARN and "not running" in checks["delivery"]["detail"]
    assert "systemctl start posd-sync" in checks["delivery"]["fix"]

    install(lane.amended(sync={"event_bus_name": f"{bus_name}-gone"}), tmp_path)
    record_payments(tmp_path)
    daemon = Daemon(path).start()
    try:
        client = DaemonClient(tmp_path / "api.sock")
        wait_link(client, MISCONFIGURED)
        install(lane, tmp_path)  # the technician corrects the bus name in the file
        code, checks = run_doctor(path)
        assert code == 1
        assert checks["event bus"]["status"] == OK  # the file is right now ...
        delivery = checks["delivery"]  # ... the running daemon is not
        assert delivery["status"] == FAIL, delivery
        assert "ResourceNotFound" in delivery["detail"]
        assert "`systemctl reload posd-sync`" in delivery["fix"]
        assert daemon.sync_proc is not None
        daemon.sync_proc.send_signal(signal.SIGHUP)  # the reload it names (ExecReload=)
        wait_link(client, "delivered")
        code, checks = run_doctor(path)
        assert checks["delivery"]["status"] == OK, checks["delivery"]
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()
