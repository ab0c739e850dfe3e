"""P2PE mode through `posd run` over its real Unix socket, with the simulated secure reader
replaying swipes encrypted in the test's process: reads are journaled as card payments whose
secret is the P2PE block, and no card number reaches the journal, the log, the register's
answers or the daemon's memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.backend import QueueRoute
from demo.pan_scan import scan_files, scan_process
from demo.readers import DEMO_BDK_ALIAS, write_secure_swipes
from drivers.card.deck import TEST_PANS
from posd.cli.main import main
from posd.journal import Journal
from posd.keys.local import LocalKeySource
from tests.posd.daemon.harness import Daemon, write_config
from tests.sync.faultproxy import FaultProxy
from wire.envelope import open_sealed
from wire.p2pe import P2PE_FIELD, P2peBlock

KEY_REF = DEMO_BDK_ALIAS
P2PE_PAYMENTS = {"card_data": "p2pe", "p2pe_key_ref": KEY_REF}
SOURCE = "posd.daemon-test"
PAYMENTS = 4
PANS = [pan for _, pan in TEST_PANS]


@pytest.fixture
def p2pe_daemon(
    tmp_path: Path, own_proxy: FaultProxy, module_route: QueueRoute
) -> Iterator[Daemon]:
    swipes = write_secure_swipes(tmp_path, PAYMENTS)
    config = write_config(
        tmp_path,
        card_port="unused",
        events_url=own_proxy.url,
        bus_name=module_route.bus_name,
        source=SOURCE,
        card_reader={"driver": "simulated-secure-msr", **swipes},
        payments=P2PE_PAYMENTS,
    )
    daemon = Daemon(config)
    yield daemon.start()
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.stop()


def secrets(state_dir: Path, key_file: Path) -> list[tuple[dict[str, object], dict[str, object]]]:
    """(clear metadata, decrypted secret) of every card payment journaled."""
    keys = LocalKeySource(key_file)
    with Journal.open_read_only(state_dir) as journal:
        return [
            (
                dict(record.meta),
                json.loads(
                    open_sealed(
                        keys.unwrap(record.data_key), record.nonce, record.ciphertext, record.aad
                    )
                ),
            )
            for record in journal.records()
            if record.kind == "card_payment"
        ]


def test_p2pe_payments_journal_the_block_and_no_card_number(
    p2pe_daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    status, devices = p2pe_daemon.call("GET", "/v1/devices")
    assert status == 200
    reader = next(row for row in devices["devices"] if row["name"] == "card_reader")
    assert reader["p2pe"]["encrypting"] is True and reader["p2pe"]["scheme"]
    palm = next(row for row in devices["devices"] if row["name"] == "palm_scanner")
    assert palm["p2pe"] is None
    answers = []
    for index in range(PAYMENTS):
        status, answer = p2pe_daemon.pay(f"p2pe-{index}", 1000 + index)
        assert status == 201, answer
        answers.append(answer)
    assert all(answer["masked_pan"] and "*" in answer["masked_pan"] for answer in answers)
    # `posd devices` shows the daemon's view: the reader encrypts, at its latest KSN
    assert main(["devices", "--config", str(p2pe_daemon.config), "--json"]) == 0
    listed_devices = json.loads(capsys.readouterr().out)
    assert listed_devices["source"] == "daemon"
    reader = next(row for row in listed_devices["devices"] if row["name"] == "card_reader")
    assert reader["p2pe"]["encrypting"] is True and reader["p2pe"]["last_ksn"]
    assert listed_devices["warnings"] == []
    main(["doctor", "--config", str(p2pe_daemon.config), "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["devices"]["status"] == "ok", checks["devices"]
    assert "card_reader connected [p2pe tdes-2key" in checks["devices"]["detail"]
    assert p2pe_daemon.proc is not None
    assert scan_process(p2pe_daemon.proc.pid, PANS) == 0
    assert p2pe_daemon.stop() == 0
    directory = p2pe_daemon.dir
    journaled = secrets(directory / "state", directory / "kek.b64")
    assert len(journaled) == PAYMENTS
    for meta, secret in journaled:
        assert meta["card_data"] == "p2pe"
        assert {"entry_mode", "brand", "bin", "last4", "masked_pan"} <= set(meta)
        assert set(secret) <= {P2PE_FIELD, "expiry"}
        block = P2peBlock.from_json(secret[P2PE_FIELD])
        assert block.key_ref == KEY_REF and block.tracks
    assert scan_files([*(directory / "state").iterdir(), directory / "daemon.log"], PANS) == 0
    assert not [pan for pan in PANS if any(pan in json.dumps(a) for a in answers)]
    # `posd journal list` (what a technician reads of a record) shows the masked data only
    assert main(["journal", "list", "--state-dir", str(directory / "state"), "--json"]) == 0
    listed = capsys.readouterr().out
    assert '"card_data": "p2pe"' in listed and "******" in listed
    assert not [pan for pan in PANS if pan in listed]
