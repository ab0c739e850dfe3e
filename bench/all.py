"""`make bench`: every benchmark in one run, their JSON merged into one results file.

Each benchmark is its own script printing one JSON object (run them alone to iterate on one);
this runs them one after another, so they do not compete for the machine, and writes
`bench/results/latest.json` with the machine they ran on. Plots land in `bench/results/`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
BENCHMARKS = (
    ("journal_append", ["bench/journal_append.py"]),
    ("capture_api", ["bench/capture_api.py"]),
    ("api_front", ["bench/api_front.py"]),
    ("drain", ["bench/drain.py"]),
    ("drain_v2", ["bench/drain_v2.py"]),
    # Real engines at 1,000 lanes, three times, then the simulator on each storm and their
    # agreement (judged on the three runs' means: bench/fleet.py `_validation`).
    (
        "fleet",
        ["bench/fleet.py", "--validate", "--repeat", "3", "--plot", "bench/results/fleet.png"],
    ),
    # The same with posd's lanes told a quota half again the real one: throttled by the
    # thousand, where the simulator's throttled share is judged relative (posd's own runs
    # throttle a handful of requests in 2,000: bench/fleet.py THROTTLED_SHARE_ABSOLUTE_TOLERANCE).
    (
        "fleet_overstated_quota",
        [
            "bench/fleet.py",
            *("--validate", "--repeat", "2", "--policies", "posd"),
            *("--posd-setting", "fleet_quota_per_second=750"),
            *("--plot", "bench/results/fleet_overstated_quota.png"),
        ],
    ),
    # 10,000 simulated lanes: varied backlogs, all at once (the storm the pacing is tuned on).
    (
        "fleet_simulated",
        [
            "bench/fleet.py",
            "--simulated",
            "--terminals",
            "10000",
            "--backlog-mix",
            "varied",
            "--plot",
            "bench/results/fleet_simulated.png",
        ],
    ),
    # The same joining over a minute, and the quota cut by a quarter at 90 s.
    (
        "fleet_simulated_joining",
        [
            "bench/fleet.py",
            "--simulated",
            "--terminals",
            "10000",
            "--backlog-mix",
            "varied",
            "--join-over",
            "60",
            "--quota-change",
            "90:3750",
            "--plot",
            "bench/results/fleet_simulated_joining.png",
        ],
    ),
    ("cloud_consumer", ["bench/cloud_consumer.py"]),
    ("footprint", ["bench/footprint.py"]),
    # 200k by default (journals cached in bench/results/journals); the figure is
    # `bench/cost_growth.py --sizes 10000 1000000`.
    ("cost_growth", ["bench/cost_growth.py"]),
)
BENCH_TIMEOUT_SECONDS = 3_600


def main() -> None:
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for name, command in BENCHMARKS:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        finished = subprocess.run(
            [sys.executable, *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=BENCH_TIMEOUT_SECONDS,
            check=False,
        )
        if finished.returncode != 0:
            results[name] = {"error": finished.stderr.strip().splitlines()[-5:]}
            continue
        try:
            results[name] = json.loads(finished.stdout)
        except json.JSONDecodeError as error:
            results[name] = {"error": f"stdout is not one JSON object: {error}"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
