"""Benchmark: drain a 20,000-record journal backlog to a local PutEvents endpoint.

Prints one JSON object. The endpoint is a small HTTP server (in its own process, so the CPU
figures are the engine's alone) that stands in for EventBridge at scale: it accepts every
entry and answers after an injected round-trip delay. For each RTT the run measures the real
round trip of one 10-entry request through boto3, derives the theoretical limit
(max in-flight x 10 / measured RTT), drains with the default `SyncSettings`, and reports
events/s, the fraction of the limit reached and CPU seconds per 1,000 events.

Usage: .venv/bin/python bench/drain.py [--records N] [--rtt-ms 0 40]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from bench.backlog import fill_backlog  # noqa: E402
from bench.endpoint import put_events_endpoint  # noqa: E402
from posd.journal import JOURNAL_FILE, Journal  # noqa: E402
from sync.client import EventsClients  # noqa: E402
from sync.engine import SyncEngine  # noqa: E402
from sync.settings import SyncSettings  # noqa: E402

DEFAULT_RECORDS = 20_000
DEFAULT_RTTS_MS = (0.0, 40.0)
RTT_SAMPLES = 30
STORE_ID, TERMINAL_ID = "store-bench", "lane-01"
DRAIN_TIMEOUT_SECONDS = 600.0
BENCH_KEY = "bench"  # the local endpoint checks no signature
# The bar: at 40 ms RTT, at least 80% of the theoretical limit.
TARGET_FRACTION = 0.8


def _measure_rtt(client: Any, entry: dict[str, Any]) -> float:
    samples = []
    for _ in range(RTT_SAMPLES):
        start = time.perf_counter()
        client.put_events(Entries=[entry] * 10)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _run(template: Path, rtt_ms: float, records: int, settings: SyncSettings) -> dict[str, Any]:
    with put_events_endpoint(rtt_ms / 1000.0) as endpoint:
        session = boto3.Session(
            aws_access_key_id=BENCH_KEY, aws_secret_access_key=BENCH_KEY, region_name="us-east-1"
        )
        clients = EventsClients(settings, endpoint_url=endpoint, session=session)
        with tempfile.TemporaryDirectory() as work:
            state_dir = Path(work) / "state"
            shutil.copytree(template, state_dir)
            with (
                Journal.open(state_dir) as journal,
                SyncEngine(
                    journal, clients, settings, store_id=STORE_ID, terminal_id=TERMINAL_ID
                ) as engine,
            ):
                sample = journal.lease(1, time.time(), 0.0).records[0]  # lease of 0 s: stays due
                from sync.events import EventBuilder

                builder = EventBuilder(
                    STORE_ID, TERMINAL_ID, settings.source, "default", journal.journal_id
                )
                client = clients(settings.read_timeout_seconds)
                rtt = _measure_rtt(client, dict(builder.build(sample).request_entry))
                cpu0, wall0 = time.process_time(), time.perf_counter()
                report = engine.drain(timeout=DRAIN_TIMEOUT_SECONDS)
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        assert report.delivered == records, report
        theoretical = settings.max_in_flight * settings.max_entries_per_request / rtt
        rate = records / wall
    return {
        "injected_rtt_ms": rtt_ms,
        "measured_rtt_ms": round(rtt * 1000, 3),
        "in_flight": settings.max_in_flight,
        "events": records,
        "seconds": round(wall, 3),
        "events_per_second": round(rate, 1),
        "theoretical_events_per_second": round(theoretical, 1),
        "fraction_of_theoretical": round(rate / theoretical, 3),
        "cpu_seconds_per_1000_events": round(cpu / records * 1000, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=list(DEFAULT_RTTS_MS))
    args = parser.parse_args()
    settings = SyncSettings()
    with tempfile.TemporaryDirectory() as work:
        template = Path(work) / "template"
        fill_start = time.perf_counter()
        fill_backlog(template, args.records, STORE_ID, TERMINAL_ID)
        fill_seconds = time.perf_counter() - fill_start
        assert (template / JOURNAL_FILE).is_file()
        runs = [_run(template, rtt, args.records, settings) for rtt in args.rtt_ms]
    at_40 = [r for r in runs if r["injected_rtt_ms"] == 40.0]
    result = {
        "benchmark": "sync.drain",
        "records": args.records,
        "fill_seconds": round(fill_seconds, 2),
        "settings": {
            "max_in_flight": settings.max_in_flight,
            "initial_in_flight": settings.initial_in_flight,
            "max_entries_per_request": settings.max_entries_per_request,
        },
        "runs": runs,
        "target_fraction_at_40ms": TARGET_FRACTION,
        "meets_target_at_40ms": bool(at_40)
        and at_40[0]["fraction_of_theoretical"] >= TARGET_FRACTION,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
