"""`posd journal stats|verify` and the demo (`python -m demo`) as real processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from drivers.card.deck import TEST_PANS as DECK_PANS
from posd.journal import JOURNAL_FILE
from posd.recorder import Recorder
from tests.cards import TEST_PANS, payment_meta, payment_secret
from tests.repo import REPO_ROOT

REPO = REPO_ROOT


def posd(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posd", *args], capture_output=True, text=True, timeout=timeout
    )


def demo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m demo` from the source checkout (the demo is not part of the posd wheel)."""
    return subprocess.run(
        [sys.executable, "-m", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def fill(recorder: Recorder, count: int) -> None:
    for index in range(count):
        pan = TEST_PANS[index % len(TEST_PANS)]
        recorder.record("card_payment", payment_meta(pan), payment_secret(pan))


def test_stats_json(recorder: Recorder, state_dir: Path) -> None:
    fill(recorder, 12)
    result = posd("journal", "stats", "--state-dir", str(state_dir), "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["records"]["pending"] == 12
    assert stats["pending_amount_by_currency"] == {"EUR": 12 * 1234}
    assert stats["size_bytes"] > 0
    human = posd("journal", "stats", "--state-dir", str(state_dir))
    assert "records pending:" in human.stdout and "12" in human.stdout


def test_verify_catches_a_flipped_byte(recorder: Recorder, state_dir: Path) -> None:
    fill(recorder, 8)
    ok = posd("journal", "verify", "--state-dir", str(state_dir), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True

    conn = sqlite3.connect(state_dir / JOURNAL_FILE)
    blob = bytearray(conn.execute("SELECT ciphertext FROM records WHERE seq = 5").fetchone()[0])
    blob[-1] ^= 0x01
    conn.execute("UPDATE records SET ciphertext = ? WHERE seq = 5", (bytes(blob),))
    conn.commit()
    conn.close()

    bad = posd("journal", "verify", "--state-dir", str(state_dir), "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert [(p["seq"], p["kind"]) for p in report["problems"]] == [(5, "chain")]
    human = posd("journal", "verify", "--state-dir", str(state_dir))
    assert human.returncode == 1 and "chain" in human.stdout and "5" in human.stdout


def test_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    result = posd("journal", "stats", "--state-dir", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "no journal in" in result.stderr and "Traceback" not in result.stderr


def test_demo_reads_back_every_payment(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    result = demo("--payments", "120", "--json", "--keep-state", str(keep))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    # Through `posd run`: one in nine is over the offline limit per payment (13 of 120), and
    # payments 24, 49, 74 and 99 are voided (each void is a record of its own).
    assert summary["payments"] == 120
    assert (summary["captured"], summary["refused"], summary["voids"]) == (107, 13, 4)
    assert summary["delivered"] == summary["received"] == summary["decrypted"] == 111
    kinds = summary["by_kind"]
    assert kinds["payment_void"] == 4 and kinds["card_payment"] + kinds["palm_payment"] == 107
    assert kinds["palm_payment"] >= 21  # every fifth is palm only; card+palm may go either way
    assert summary["lost"] == 0 and summary["verify_ok"] is True
    assert summary["daemon_exit_code"] == 0
    # every range signed by the lane's certificate, complete, chained; the flush cut the last
    assert summary["ranges"] == {"complete": 2} and summary["alarms"] == {}
    assert summary["proven_through"] == summary["last_seq"] == 111
    assert (keep / JOURNAL_FILE).exists()
    data = b"".join(p.read_bytes() for p in keep.iterdir() if p.name.startswith(JOURNAL_FILE))
    for _, pan in DECK_PANS:  # the simulated reader presents these
        assert pan.encode() not in data
        assert pan not in result.stdout + result.stderr
    assert b"tok-demo-shopper" not in data


def test_demo_rejects_bad_arguments(tmp_path: Path) -> None:
    assert demo("--payments", "0").returncode == 2
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    result = demo("--keep-state", str(tmp_path / "full"))
    assert result.returncode == 2 and "not empty" in result.stderr


def test_argument_errors_never_echo_a_card_number() -> None:
    pan = DECK_PANS[0][1]
    plain = posd("decode", "tlv", "5A08", pan)
    assert plain.returncode == 2
    assert pan not in plain.stdout + plain.stderr
    assert "unrecognized arguments" in plain.stderr and "Traceback" not in plain.stderr
    as_json = posd("decode", "tlv", "5A08", pan, "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"] == "bad_arguments"
    assert pan not in as_json.stdout + as_json.stderr


def test_inspection_never_writes_to_the_journal(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / JOURNAL_FILE).write_bytes(b"")
    result = posd("journal", "stats", "--state-dir", str(state_dir))
    assert result.returncode == 2 and "not a posd journal" in result.stderr
    assert (state_dir / JOURNAL_FILE).stat().st_size == 0


def test_empty_tlv_is_malformed() -> None:
    result = posd("decode", "tlv", "")
    assert result.returncode == 2 and "no data" in result.stderr
