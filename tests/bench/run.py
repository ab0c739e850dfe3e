"""Runs a benchmark script of bench/ as its own process, as `make bench` does, for the tests
that keep the benchmarks runnable: the script must exit 0 and print one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.repo import REPO_ROOT

REPO = REPO_ROOT
BENCH_TIMEOUT_SECONDS = 300
USAGE_ERROR = 2  # argparse's exit status for arguments it refuses


def run_bench(script: str, *args: object) -> dict[str, Any]:
    """`bench/<script>` with `args` (each turned into a string); its JSON result."""
    finished = _run(script, args)
    assert finished.returncode == 0, finished.stderr[-2000:]
    result: dict[str, Any] = json.loads(finished.stdout)
    return result


def refused_bench(script: str, *args: object) -> str:
    """`bench/<script>` with arguments it must refuse (a usage error); its stderr."""
    finished = _run(script, args)
    assert finished.returncode == USAGE_ERROR, finished.stderr[-2000:]
    return finished.stderr


def _run(script: str, args: tuple[object, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *(str(arg) for arg in args)],
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_SECONDS,
        check=False,
        cwd=REPO,
    )
