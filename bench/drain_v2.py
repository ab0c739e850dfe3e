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
import multiprocessing
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import cbor2  # noqa: E402

from bench.backlog import fill_backlog  # noqa: E402
from posd.demo.emulator import NoDelayQuietMixin  # noqa: E402
from posd.demo.eventbridge_v2 import PUT_EVENTS_PATH, SMITHY_PROTOCOL  # noqa: E402
from posd.journal import JOURNAL_FILE, Journal  # noqa: E402
from sync.engine import SyncEngine  # noqa: E402
from sync.settings import SyncSettings  # noqa: E402
from sync.sources import client_source  # noqa: E402
from sync.v2 import V2_MAX_ENTRIES, V2_MAX_REQUEST_BYTES  # noqa: E402

DEFAULT_RECORDS = 10_000
DEFAULT_RTTS_MS = (0.0, 40.0)
LOOPBACK = "127.0.0.1"
STORE_ID, TERMINAL_ID = "store-bench", "lane-01"
DRAIN_TIMEOUT_SECONDS = 600.0
BENCH_KEY = "bench"  # the local endpoint checks no signature
BENCH_BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-busv2/bench/abcdefghijklmnopqrstuvwxy"


def _serve(port_queue: Any, rtt_seconds: float) -> None:
    """The stand-in EventBridge (v1 and v2): accepts every entry after `rtt_seconds`."""

    class Handler(NoDelayQuietMixin, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            v2 = self.path == PUT_EVENTS_PATH
            body = cbor2.loads(raw) if v2 else json.loads(raw)
            time.sleep(rtt_seconds)
            entries: list[dict[str, Any]] = [
                {"EventId": str(uuid.uuid4())} for _ in body["Entries"]
            ]
            if v2:
                for number, entry in enumerate(entries, 1):
                    entry.update(SequenceNumber=str(number), SuccessCode="PUBLISHED")
            answer = {"FailedEntryCount": 0, "Entries": entries}
            reply = cbor2.dumps(answer) if v2 else json.dumps(answer).encode()
            self.send_response(200)
            if v2:
                self.send_header("Content-Type", "application/cbor")
                self.send_header("smithy-protocol", SMITHY_PROTOCOL)
            else:
                self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _drain(template: Path, endpoint: str, settings: SyncSettings) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and records delivered for one drain of a copy of template."""
    session = boto3.Session(
        aws_access_key_id=BENCH_KEY, aws_secret_access_key=BENCH_KEY, region_name="us-east-1"
    )
    clients = client_source(
        settings,
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        endpoint_url=endpoint,
        session=session,
    )
    with tempfile.TemporaryDirectory() as work:
        state_dir = Path(work) / "state"
        shutil.copytree(template, state_dir)
        with (
            Journal.open(state_dir) as journal,
            SyncEngine(
                journal, clients, settings, store_id=STORE_ID, terminal_id=TERMINAL_ID
            ) as engine,
        ):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report = engine.drain(timeout=DRAIN_TIMEOUT_SECONDS)
            return time.perf_counter() - wall0, time.process_time() - cpu0, report.delivered


def _run(template: Path, rtt_ms: float, records: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ports: Any = context.Queue()
    server = context.Process(target=_serve, args=(ports, rtt_ms / 1000.0), daemon=True)
    server.start()
    v1 = SyncSettings()
    v2 = replace(
        v1,
        api="v2",
        event_bus_arn=BENCH_BUS_ARN,
        max_entries_per_request=V2_MAX_ENTRIES,
        max_request_bytes=V2_MAX_REQUEST_BYTES,
    )
    try:
        endpoint = f"http://{LOOPBACK}:{ports.get(timeout=30)}"
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
    finally:
        server.terminate()
        server.join(timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=list(DEFAULT_RTTS_MS))
    args = parser.parse_args()
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
