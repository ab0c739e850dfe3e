"""`python -m demo --sync-api v2`: the daemon delivers through EventBridge v2 (the local v2
endpoint) and the queue holds every record exactly once, before the backend's dedupe."""

from __future__ import annotations

import json

from tests.posd.cli.test_journal_cmd import demo

PAYMENTS = 60


def test_demo_over_v2_has_no_duplicates_in_the_queue() -> None:
    result = demo("--sync-api", "v2", "--payments", str(PAYMENTS), "--json")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sync_api"] == "v2"
    assert summary["lost"] == 0 and summary["verify_ok"] is True
    assert summary["delivered"] == summary["received"] == summary["decrypted"] > 0
    assert summary["duplicates"] == 0
    assert summary["proven_through"] == summary["last_seq"] and summary["alarms"] == {}


def test_demo_refuses_an_unknown_api() -> None:
    result = demo("--sync-api", "v3")
    assert result.returncode == 2 and "Traceback" not in result.stderr
