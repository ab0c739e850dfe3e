"""Benchmark: drain the same journal backlog through EventBridge v1 and v2, in one run.

Prints one JSON object. The endpoint is a small HTTP server in its own process (the CPU
figures are the engine's alone) that stands in for EventBridge at scale: it speaks both wire
protocols (v1 JSON `AWSEvents.PutEvents`, v2 smithy RPC v2 CBOR), accepts every entry and
answers after an injected round-trip delay. For each RTT the same backlog is drained with
api = "v1" (the default settings: 10 entries a request) and with api = "v2" (100 entries and
1 MiB a request, the v2 limits), both through the real boto3 clients; the figures are
events/s, CPU seconds per 1,000 events, and the ratio v2 / v1 measured in the same run.

Usage: .venv/bin/python bench/drain_v2.py [--records N] [--rtt-ms 0 40]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from bench.backlog import fill_backlog  # noqa: E402
from bench.endpoint import put_events_endpoint  # noqa: E402
from posd.assembly import engine_for  # noqa: E402
from posd.journal import JOURNAL_FILE, Journal  # noqa: E402
from posd.logs import configure_logging  # noqa: E402
from sync.eventbridge.v2 import V2_MAX_ENTRIES, V2_MAX_REQUEST_BYTES  # noqa: E402
from sync.settings import SyncSettings  # noqa: E402

DEFAULT_RECORDS = 10_000
DEFAULT_RTTS_MS = (0.0, 40.0)
STORE_ID, TERMINAL_ID = "store-bench", "lane-01"
DRAIN_TIMEOUT_SECONDS = 600.0
BENCH_KEY = "bench"  # the local endpoint checks no signature
BENCH_BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-busv2/bench/abcdefghijklmnopqrstuvwxy"


def _drain(template: Path, endpoint: str, settings: SyncSettings) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and records delivered for one drain of a copy of template."""
    session = boto3.Session(
        aws_access_key_id=BENCH_KEY, aws_secret_access_key=BENCH_KEY, region_name="us-east-1"
    )
    with tempfile.TemporaryDirectory() as work:
        state_dir = Path(work) / "state"
        shutil.copytree(template, state_dir)
        with (
            Journal.open(state_dir) as journal,
            engine_for(
                journal,
                settings,
                store_id=STORE_ID,
                terminal_id=TERMINAL_ID,
                endpoint_url=endpoint,
                session=session,
            ) as engine,
        ):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report = engine.drain(timeout=DRAIN_TIMEOUT_SECONDS)
            return time.perf_counter() - wall0, time.process_time() - cpu0, report.delivered


def _run(template: Path, rtt_ms: float, records: int) -> dict[str, Any]:
    v1 = SyncSettings()
    v2 = replace(
        v1,
        api="v2",
        event_bus_arn=BENCH_BUS_ARN,
        max_entries_per_request=V2_MAX_ENTRIES,
        max_request_bytes=V2_MAX_REQUEST_BYTES,
    )
    with put_events_endpoint(rtt_ms / 1000.0) as endpoint:
        row: dict[str, Any] = {"injected_rtt_ms": rtt_ms}
        for name, settings in (("v1", v1), ("v2", v2)):
            wall, cpu, delivered = _drain(template, endpoint, settings)
            assert delivered == records, (name, delivered)
            row[name] = {
                "entries_per_request": settings.max_entries_per_request,
                "seconds": round(wall, 3),
                "events_per_second": round(records / wall, 1),
                "cpu_seconds_per_1000_events": round(cpu / records * 1000, 4),
            }
        row["v2_over_v1_events_per_second"] = round(
            row["v2"]["events_per_second"] / row["v1"]["events_per_second"], 2
        )
        row["v2_over_v1_cpu_per_event"] = round(
            row["v2"]["cpu_seconds_per_1000_events"] / row["v1"]["cpu_seconds_per_1000_events"], 2
        )
        return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=list(DEFAULT_RTTS_MS))
    args = parser.parse_args()
    configure_logging("error")  # stderr: stdout is this benchmark's JSON
    with tempfile.TemporaryDirectory() as work:
        template = Path(work) / "template"
        fill_backlog(template, args.records, STORE_ID, TERMINAL_ID)
        assert (template / JOURNAL_FILE).is_file()
        runs = [_run(template, rtt, args.records) for rtt in args.rtt_ms]
    print(
        json.dumps({"benchmark": "sync.drain_v2", "records": args.records, "runs": runs}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
