"""The short rehearsal (`make test`): ten simulated hours without the WAN, a nightly restart
and three SIGKILLs included, under two real minutes. The pending-age limit must first refuse
just after the first record of the outage has waited that long, and the drain must lose
nothing and apply nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.posd.daemon.harness import REPO

HOURS = 10  # 02:30-12:30: the 03:00 restart, the morning, the lunch rush
AGE_LIMIT_H = 3
# The first payment asked after the limit is passed is refused: at a morning's pace, within
# half an hour.
REFUSAL_SLACK_H = 0.5
REAL_BOUND_S = 120.0
ROUNDING_H = 0.001  # the summary's hours are rounded to 4 places


def test_a_short_outage_refuses_on_time_and_drains_everything() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.rehearsal.rehearse",
            "--hours",
            str(HOURS),
            "--no-plot",
            "--limit",
            f"max_pending_age_seconds={AGE_LIMIT_H * 3600}",
            "--limit",
            "max_pending_amount=0",
            "--limit",
            "max_pending_count=0",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=REAL_BOUND_S * 2,
        check=False,
        cwd=REPO,
    )
    summary = json.loads(done.stdout.decode())
    print(done.stderr.decode()[-3000:])  # the hourly table, for `pytest -s`
    assert summary["violations"] == []
    assert done.returncode == 0
    assert summary["lost"] == 0 and summary["duplicates_in_effect"] == 0
    assert summary["restarts"] == 1 and len(summary["kills"]) == 3
    first_taken = summary["first_taken_hour"]
    refused_at = summary["first_refused_hour"]["offline_pending_age_limit"]
    limit_passed = first_taken + AGE_LIMIT_H
    assert limit_passed - ROUNDING_H < refused_at <= limit_passed + REFUSAL_SLACK_H
    assert summary["drain_seconds"] is not None
    assert summary["real_seconds"] < REAL_BOUND_S
