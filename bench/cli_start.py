"""Start-up time of CLI commands (median of N runs, wall clock), printed as JSON.

Usage: python bench/cli_start.py [N]. Runs `python -m posd ...` from this tree; the thin
client commands run against a config whose socket has no daemon (the journal path).
bench/footprint.py reports `--help` and `status` from here too.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.devconfig import DevConfig  # noqa: E402

COMMANDS = (
    ("--help",),
    ("--version",),
    ("status", "--help"),
    ("sync", "status", "--help"),
    ("decode", "track", ";4111111111111111=25121010000000000000?"),
)
DEFAULT_RUNS = 5


def timed(argv: tuple[str, ...], runs: int, env: dict[str, str]) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "posd", *argv], capture_output=True, env=env)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples), 3)


def start_times(
    runs: int = DEFAULT_RUNS, commands: tuple[tuple[str, ...], ...] = COMMANDS
) -> dict[str, float]:
    """Median start-up seconds of each command, and of `status` on a lane with no daemon."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as scratch:
        config = DevConfig(
            "s",
            "t",
            api={"socket": Path(scratch) / "api.sock"},
            keys={"provider": "local", "local_key_file": "k"},
            devices={},
        ).write(Path(scratch) / "posd.toml")
        argvs = [*commands, ("status", "--config", str(config))]
        return {" ".join(a[:2]): timed(a, runs, env) for a in argvs}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RUNS
    print(json.dumps(start_times(runs), indent=2))


if __name__ == "__main__":
    main()
