"""The CI-sized chaos soak: the chaos module run as `make chaos` runs it, for about two minutes
of faults (`POSD_CHAOS_SECONDS` makes it longer), must keep every invariant."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.chaos.soak import SECONDS_ENV
from tests.posd.daemon.harness import REPO

CI_SECONDS = 100.0
RUN_TIMEOUT_S = 900.0  # the soak bounds itself; this only stops a hung run


def test_chaos_soak_keeps_the_promise() -> None:
    seconds = float(os.environ.get(SECONDS_ENV, CI_SECONDS))
    done = subprocess.run(
        [sys.executable, "-m", "tests.chaos.soak", "--seconds", str(seconds)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=RUN_TIMEOUT_S + seconds,
        check=False,
        cwd=REPO,
    )
    output = done.stdout.decode()
    summary = json.loads(output)
    print(output)  # the figures, for `pytest -s` and the CI log
    assert summary["violations"] == [], done.stderr.decode()[-3000:]
    assert done.returncode == 0
    assert summary["lost"] == 0 and summary["extra"] == 0
    assert summary["kills"] > 0
    assert summary["capture_kills"] > 0 and summary["delivery_kills"] > 0
    assert summary["acknowledged"] > 0
