"""Every command the tools suggest for a damaged journal works on the damage that suggested it.

A row whose clear metadata is damaged: `posd journal list` shows it as damaged (no crash),
and `posd sync retry-quarantined` refuses it, saying why, while retrying the rows that can go.
A damaged page: the advice (`DAMAGED_PAGE_ADVICE`, which doctor prints) is followed step by
step and ends where it promises: the damaged file set aside, a journal that checks out, seqs
going on after the last one issued.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from demo.devconfig import DevConfig
from posd.journal import JOURNAL_FILE, Journal
from posd.journal.damage import DAMAGED_PAGE_ADVICE
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from tests.cards import STORE_ID, TERMINAL_ID, TEST_PANS, payment_meta, payment_secret
from tests.sync.test_damage import corrupt_a_page

RECORDS = 40
GARBLED_SEQ = 3
NOT_AN_OBJECT_SEQ = 4
TAMPERED_SEQ = 5
REFUSED_BY_THE_BUS_SEQ = 7
BAD_PAGE_SEQ = 20
LEASE_SECONDS = 30.0


def posd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posd", *args], capture_output=True, text=True, timeout=120
    )


def posd_json(*args: str, code: int = 0) -> Any:
    done = posd(*args, "--json")
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def fill(recorder: Recorder, count: int) -> None:
    for index in range(count):
        pan = TEST_PANS[index % len(TEST_PANS)]
        recorder.record("card_payment", payment_meta(pan), payment_secret(pan))


def sql(path: Path, statement: str, *args: object) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(statement, args)
    conn.close()


def config_for(tmp_path: Path) -> Path:
    """A config for the state dir `tmp_path / "state"` (the `state_dir` fixture)."""
    config = DevConfig(
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        sync={"event_bus_name": "posd-test"},
        aws={"region": "us-east-1"},
        devices={},
    )
    return config.write(tmp_path / "posd.toml")


def quarantine_all_bad(state_dir: Path) -> None:
    """What delivery does: lease everything (the bad rows are quarantined), deliver the rest
    but one, which the bus refuses (quarantined too, for a cause that can be fixed)."""
    from sync.outbox import Delivered

    with Journal.open(state_dir) as journal:
        lease = journal.lease(RECORDS * 2, 2e9, LEASE_SECONDS)
        journal.quarantine(REFUSED_BY_THE_BUS_SEQ, "entry rejected: ValidationException")
        delivered = [r for r in lease.records if r.seq != REFUSED_BY_THE_BUS_SEQ]
        journal.mark_delivered([Delivered(r.seq, f"remote-{r.seq}") for r in delivered], 2e9)


def test_a_damaged_row_is_listed_as_damaged_and_never_retried_into_quarantine_again(
    recorder: Recorder, state_dir: Path, tmp_path: Path
) -> None:
    fill(recorder, 10)
    recorder.journal.close()
    db = state_dir / JOURNAL_FILE
    sql(db, "UPDATE records SET meta = CAST(x'ff7b67' AS TEXT) WHERE seq = ?", GARBLED_SEQ)
    sql(db, "UPDATE records SET meta = '[1]' WHERE seq = ?", NOT_AN_OBJECT_SEQ)
    sql(db, "UPDATE records SET nonce = zeroblob(12) WHERE seq = ?", TAMPERED_SEQ)
    quarantine_all_bad(state_dir)

    listed = posd_json("journal", "list", "--state", "quarantined", "--state-dir", str(state_dir))
    rows = {row["seq"]: row for row in listed["records"]}
    assert set(rows) == {GARBLED_SEQ, NOT_AN_OBJECT_SEQ, TAMPERED_SEQ, REFUSED_BY_THE_BUS_SEQ}
    assert "metadata is not valid UTF-8" in rows[GARBLED_SEQ]["damaged"]
    assert "metadata is not a JSON object" in rows[NOT_AN_OBJECT_SEQ]["damaged"]
    assert rows[REFUSED_BY_THE_BUS_SEQ]["damaged"] is None
    table = posd("journal", "list", "--state", "quarantined", "--state-dir", str(state_dir))
    assert table.returncode == 0 and "damaged" in table.stdout, table.stderr

    config = config_for(tmp_path)
    retried = posd_json("sync", "retry-quarantined", "--config", str(config))
    assert retried["returned_to_pending"] == 1
    refused = {row["seq"]: row["reason"] for row in retried["refused"]}
    assert set(refused) == {GARBLED_SEQ, NOT_AN_OBJECT_SEQ, TAMPERED_SEQ}
    assert "tampered" in refused[TAMPERED_SEQ]
    assert "corrupt" in refused[GARBLED_SEQ] and "corrupt" in refused[NOT_AN_OBJECT_SEQ]
    text = posd("sync", "retry-quarantined", "--config", str(config))
    assert text.returncode == 0 and "would be quarantined again" in text.stdout, text.stdout

    with Journal.open(state_dir) as journal:
        lease = journal.lease(RECORDS, 2e9, LEASE_SECONDS)
        assert [record.seq for record in lease.records] == [REFUSED_BY_THE_BUS_SEQ]
        assert lease.quarantined == []  # nothing cycled back into quarantine


def deliver_all(state_dir: Path) -> None:
    """What `posd sync flush` does with the bus answering: deliver every record it can read."""
    from sync.outbox import Delivered

    with Journal.open(state_dir) as journal:
        while lease := journal.lease(RECORDS, 2e9, LEASE_SECONDS):
            if not lease.records and not lease.quarantined:
                break
            delivered = [Delivered(r.seq, f"remote-{r.seq}") for r in lease.records]
            journal.mark_delivered(delivered, 2e9)


def test_the_damaged_page_advice_ends_where_it_promises(
    recorder: Recorder,
    local_key_provider: RotatingKeyProvider,
    state_dir: Path,
    tmp_path: Path,
) -> None:
    fill(recorder, RECORDS)
    journal_id = recorder.journal.journal_id
    recorder.journal.close()
    corrupt_a_page(tmp_path / "posd.toml", BAD_PAGE_SEQ)  # the state dir is tmp_path / "state"
    assert "posd journal verify" in DAMAGED_PAGE_ADVICE
    assert "posd journal reset --accept-loss" in DAMAGED_PAGE_ADVICE

    report = posd_json("journal", "verify", "--state-dir", str(state_dir), code=1)
    lost = {p["seq"] for p in report["problems"] if p["kind"] == "unreadable"}
    assert BAD_PAGE_SEQ in lost

    # Before the readable records are delivered, reset refuses, saying what to do first.
    early = posd("journal", "reset", "--accept-loss", "--state-dir", str(state_dir))
    assert early.returncode != 0 and "Traceback" not in early.stderr
    assert "pending" in early.stderr and "posd sync flush" in early.stderr, early.stderr

    deliver_all(state_dir)
    accepted = posd_json("journal", "reset", "--accept-loss", "--state-dir", str(state_dir))
    assert accepted["action"] == "damaged_set_aside", accepted
    assert accepted["journal_id"] != journal_id
    assert accepted["unreadable"] == len(lost)
    assert Path(accepted["set_aside"]).is_file()  # kept for a technician, never deleted

    assert posd_json("journal", "verify", "--state-dir", str(state_dir))["ok"]
    conn = sqlite3.connect(state_dir / JOURNAL_FILE)
    assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"  # doctor's check
    conn.close()
    with Journal.open(state_dir) as journal:
        again = Recorder(journal, local_key_provider, STORE_ID, TERMINAL_ID)
        pan = TEST_PANS[0]
        assert again.record("card_payment", payment_meta(pan), payment_secret(pan)).seq > RECORDS
    healthy = posd_json("journal", "reset", "--accept-loss", "--state-dir", str(state_dir))
    assert healthy["action"] == "none"
