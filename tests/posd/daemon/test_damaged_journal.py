"""`posd run` on a damaged journal: it starts, says what it found, quarantines what is bad,
keeps capturing and delivering the rest; and it never crash-loops under `Restart=on-failure`
(a journal refused for its identity exits 2, which the unit does not restart)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from demo.backend import QueueRoute
from demo.localaws.emulator import LocalAws
from drivers.card.simulator import CardReaderSimulator
from posd.daemon.exits import NEEDS_TECHNICIAN, RESTART
from posd.journal import JOURNAL_FILE
from tests.posd.daemon.conftest import DaemonFactory
from tests.posd.daemon.harness import REPO, Daemon
from tests.sync.conftest import receive_all
from tests.sync.faultproxy import FaultProxy
from tests.sync.test_damage import corrupt_a_page

PAYMENTS = 30
GARBLED_META_SEQ = 5
TAMPERED_SEQ = 10
BAD_PAGE_SEQ = 20
AFTER_SHM_LOSS = 3
UNIT = REPO / "systemd" / "posd.service"


def journal_path(daemon: Daemon) -> Path:
    return daemon.dir / "state" / JOURNAL_FILE


def pay_many(daemon: Daemon, prefix: str, count: int) -> dict[str, dict[str, Any]]:
    answers = {}
    for index in range(count):
        status, answer = daemon.pay(f"{prefix}-{index}")
        assert status == 201, answer
        answers[answer["event_id"]] = answer
    return answers


def sql(path: Path, statement: str, *args: object) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(statement, args)
    conn.close()


def flip_ciphertext(path: Path, seq: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    [(blob,)] = conn.execute("SELECT ciphertext FROM records WHERE seq = ?", (seq,)).fetchall()
    flipped = bytes([blob[0] ^ 0x01]) + blob[1:]
    conn.execute("UPDATE records SET ciphertext = ? WHERE seq = ?", (flipped, seq))
    conn.close()


def verify(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    command = ["journal", "verify", "--json", "--config", str(daemon.config)]
    done = subprocess.run(
        [sys.executable, "-m", "posd", *command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.startswith("{") else {}


def test_the_daemon_starts_on_a_damaged_journal_and_delivers_the_rest(
    make_daemon: DaemonFactory,
    own_reader: CardReaderSimulator,
    own_proxy: FaultProxy,
    module_route: QueueRoute,
    local_aws: LocalAws,
) -> None:
    own_proxy.down()  # nothing delivered yet: the damage hits pending records
    daemon = make_daemon()
    answers = pay_many(daemon, "dmg", PAYMENTS)
    daemon.stop()
    db = journal_path(daemon)
    sql(db, "UPDATE records SET meta = 'garbage{' WHERE seq = ?", GARBLED_META_SEQ)
    flip_ciphertext(db, TAMPERED_SEQ)
    corrupt_a_page(daemon.config, BAD_PAGE_SEQ)  # checkpoints first: bit rot in the file

    code, report = verify(daemon)
    assert code == 1 and not report["ok"]
    damaged = {problem["seq"] for problem in report["problems"] if "seq" in problem}
    assert {GARBLED_META_SEQ, TAMPERED_SEQ} <= damaged and len(damaged) >= 3

    # Records appended after the damage, then a kill, then the WAL index lost.
    again = make_daemon()
    more = pay_many(again, "shm", AFTER_SHM_LOSS)
    again.kill()
    (db.parent / (JOURNAL_FILE + "-shm")).unlink()

    own_proxy.up()
    final = make_daemon()
    status, answer = final.pay("after-damage")
    assert status == 201, answer
    more[answer["event_id"]] = answer
    status, flushed = final.call("POST", "/v1/sync/flush", {"timeout_s": 60})
    assert status == 200 and flushed["pending"] <= len(damaged)
    status, report = final.call("GET", "/v1/status")
    assert report["quarantined"] >= 2 and report["tampered"] >= 1, report
    assert report["unreadable"] >= 1, report
    assert final.stop() == 0

    expected = {event_id for event_id, a in {**answers, **more}.items() if a["seq"] not in damaged}
    received = {
        event["detail"]["event_id"]
        for event in receive_all(local_aws.client("sqs"), module_route.queue_url, len(expected) + 1)
        if event["detail-type"] != "posd.alarm"
    }
    assert expected <= received
    damaged_ids = {event_id for event_id, a in answers.items() if a["seq"] in damaged}
    assert not damaged_ids & received  # quarantined, never forwarded
    log = (final.dir / "delivery.log").read_text()
    assert "tampered" in log


def test_a_journal_refused_for_its_identity_exits_2_which_the_unit_does_not_restart(
    make_daemon: DaemonFactory,
) -> None:
    daemon = make_daemon()
    pay_many(daemon, "id", 2)
    daemon.stop()
    sql(journal_path(daemon), "DELETE FROM records")  # emptied behind posd's back

    refused = make_daemon(start=False).start(wait_ready=False)
    assert refused.proc is not None
    assert refused.proc.wait(30) == NEEDS_TECHNICIAN
    assert any("journal_identity" in note for note in refused.read_notes(1.0))
    refused.close()
    assert "journal_identity" in refused.output()

    unit = UNIT.read_text().splitlines()
    assert "Restart=on-failure" in unit
    assert f"RestartPreventExitStatus={NEEDS_TECHNICIAN}" in unit


def test_a_journal_that_cannot_be_opened_now_exits_1_and_is_restarted(
    make_daemon: DaemonFactory,
) -> None:
    daemon = make_daemon(start=False)
    (daemon.dir / "state" / JOURNAL_FILE).mkdir(parents=True)  # not a file: cannot be opened

    started = daemon.start(wait_ready=False)
    assert started.proc is not None
    assert started.proc.wait(30) == RESTART
    started.close()
    assert f"RestartPreventExitStatus={RESTART}" not in UNIT.read_text()
