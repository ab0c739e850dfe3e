"""A disk that stays full must not flood the log: the journal's failed writes are logged once
with their cause, then summarised every 5 minutes with how many failed meanwhile (found in the
field: `journal.damaged_rows_not_written` at error level once a second, for hours)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from posd.keys.local import create_key_file
from tests.repo import REPO_ROOT
from tests.sync.disk_full_child import RECORDS

ROUNDS = 30
EVENT = "journal.damaged_rows_not_written"
CHILD_TIMEOUT_S = 60.0


def _logs(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_a_full_disk_is_logged_once_then_summarised(tmp_path: Path) -> None:
    key_file = tmp_path / "local.key"
    create_key_file(key_file)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.sync.disk_full_child",
            str(tmp_path / "state"),
            str(key_file),
            str(ROUNDS),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    logs = [entry for entry in _logs(done.stderr) if entry["event"].startswith(EVENT)]
    # The first failure, then every round after it only counted until the interval passes:
    # one summary (before: a line per round).
    events = [entry["event"] for entry in logs]
    assert events == [EVENT, f"{EVENT}.still_failing", f"{EVENT}.recovered"], len(logs)
    first, summary, recovered = logs
    assert first["level"] == summary["level"] == "error"
    assert first["error"] == "disk I/O error", first  # the cause, as SQLite names it
    assert summary["repeated"] == ROUNDS and summary["count"] == RECORDS, summary
    assert recovered["failures"] == ROUNDS + 1, recovered  # room again: the streak ends
