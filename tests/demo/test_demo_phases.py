"""`python -m demo` tells a newcomer what it is doing and how to read its numbers: one line per
phase on stderr as it goes (stdout stays the one JSON object with `--json`), and a summary that
says `refused` and `delivered` > `captured` are on purpose."""

from __future__ import annotations

import json
import subprocess
import sys

from demo.__main__ import SUMMARY_WIDTH, render_summary
from demo.pipeline import OVER_LIMIT_EVERY
from tests.repo import REPO_ROOT

PAYMENTS = 26  # one void (one in 25) and two over the limit (one in 9)
PHASES = ("emulator", "daemon", f"paying {PAYMENTS}", "flushing", "consuming", "verifying")


def test_the_demo_prints_its_phases_and_explains_its_summary() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "demo", "--payments", str(PAYMENTS), "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout: the one object, nothing else
    phases = [line for line in done.stderr.splitlines() if line.startswith("demo: ")]
    assert len(phases) == len(PHASES), done.stderr
    for line, word in zip(phases, PHASES, strict=True):
        assert word in line, (word, line)
        assert len(line) <= SUMMARY_WIDTH, line

    assert result["refused"] == PAYMENTS // OVER_LIMIT_EVERY
    assert result["delivered"] == result["captured"] + result["voids"] > result["captured"]
    summary = render_summary(result)
    assert all(len(line) <= SUMMARY_WIDTH for line in summary.splitlines()), summary
    text = " ".join(summary.split())
    assert f"refused {result['refused']}: on purpose" in text
    assert f"One payment in {OVER_LIMIT_EVERY}" in text and "offline limit" in text
    assert f"delivered {result['delivered']} > captured {result['captured']}" in text
    assert "each void" in text and "record of its own" in text
