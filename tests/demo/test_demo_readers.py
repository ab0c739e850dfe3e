"""`python -m demo --reader NAME` end to end: every reader class delivers every payment; with
`secure-msr` (P2PE) no deck card number is found in clear in the journal, the daemon's log or
its memory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from demo.readers import READERS, SECURE_MSR, SERIAL
from tests.repo import REPO_ROOT

PAYMENTS = 12


@pytest.mark.parametrize("reader", [r for r in READERS if r != SERIAL])  # serial: make demo's
def test_the_demo_runs_with_each_reader(reader: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "demo", "--reader", reader, "--payments", str(PAYMENTS), "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["reader"] == reader and result["lost"] == 0
    assert result["decrypted"] == result["captured"] + result["voids"]
    if reader == SECURE_MSR:
        assert result["clear_pans"] == {"journal": 0, "logs": 0, "memory": 0}
        # every card payment's tracks were opened in Payment Cryptography, nowhere else
        assert result["p2pe_calls"].get("ReEncryptData", 0) >= result["by_kind"]["card_payment"]
        # and filed with a masked PAN and the processor key's ciphertexts only
        assert result["p2pe_filed"] == result["by_kind"]["card_payment"] > 0
    else:
        assert result["clear_pans"] is None and result["p2pe_filed"] is None
