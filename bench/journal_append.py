"""Append throughput and latency of the journal against raw durable SQLite inserts.

Both sides run in the same process, on the same disk, with the same pragmas (WAL,
synchronous=FULL, secure_delete=ON) and comparable row sizes, interleaved in rounds so that
drift in the machine affects both alike. Then a batch of appends runs under the profiler for
`breakdown_us`, where the append's time goes (bench/append_breakdown.py). Prints one JSON
object.

`--dir` on a tmpfs (memory: an fsync costs nothing) leaves each side's CPU work alone, and
`--pause S` sleeps S seconds before each timed operation, outside its time: the CPU work as a
payment meets it, after the sleep of the last commit's fsync, when this machine runs the same
code about 2.5-3 times as slowly as back to back (docs/performance.md, "What 0.8 would
take").

    .venv/bin/python bench/journal_append.py [--records N] [--rounds R] [--breakdown B]
        [--dir DIR] [--pause S]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.append_breakdown import breakdown  # noqa: E402
from posd.journal import Journal  # noqa: E402
from posd.keys.local import LocalKeySource  # noqa: E402
from posd.keys.provider import RotatingKeyProvider  # noqa: E402
from posd.recorder import Recorder  # noqa: E402

SECRET = json.dumps({"pan": "4" + "0" * 15, "expiry": "2512", "track2": "x" * 37}).encode()
META = {"amount": 1234, "currency": "EUR", "bin": "400000", "last4": "0000", "entry_mode": "chip"}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summarize(latencies: list[float]) -> dict[str, float]:
    total = sum(latencies)
    return {
        "appends_per_s": round(len(latencies) / total, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
    }


class RawBaseline:
    """Plain sqlite3: one INSERT + COMMIT per row, same durability, same bytes per row."""

    def __init__(self, path: Path, payload_bytes: int) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute(
            "CREATE TABLE records (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, "
            "meta TEXT NOT NULL, payload BLOB NOT NULL, chain BLOB NOT NULL)"
        )
        self.payload = os.urandom(payload_bytes)
        self.meta = json.dumps(META)
        self.seq = 0

    def append(self) -> None:
        self.seq += 1
        self.conn.execute("BEGIN")
        self.conn.execute(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?)",
            (self.seq, str(uuid.uuid4()), self.meta, self.payload, os.urandom(32)),
        )
        self.conn.execute("COMMIT")


@contextmanager
def append_sides(where: Path) -> Iterator[tuple[Callable[[], object], Callable[[], object], int]]:
    """(one journal append, one raw insert of the same size, that size): both sides, open for
    the block, for benchmarks that interleave them with something of their own."""
    source = LocalKeySource(where / "kek.b64", create=True)
    with RotatingKeyProvider(source, source) as keys, Journal.open(where / "journal") as journal:
        recorder = Recorder(journal, keys, "store-bench", "lane-bench")
        sample = recorder.record("card_payment", META, SECRET)
        payload_bytes = len(sample.ciphertext) + len(sample.nonce) + 32  # + wrapped-key share
        baseline = RawBaseline(where / "raw.db", payload_bytes)
        try:
            yield (
                lambda: recorder.record("card_payment", META, SECRET),
                baseline.append,
                payload_bytes,
            )
        finally:
            baseline.conn.close()


def timed(
    operation: Callable[[], object], count: int, into: list[float], pause: float = 0.0
) -> None:
    """Run `operation` `count` times, appending each one's duration to `into`; with `pause`,
    sleep that long before each one (not timed)."""
    for _ in range(count):
        if pause:
            time.sleep(pause)
        started = time.perf_counter()
        operation()
        into.append(time.perf_counter() - started)


def run(
    records: int, rounds: int, where: Path, profiled: int = 0, pause: float = 0.0
) -> dict[str, Any]:
    per_round = records // rounds
    ours: list[float] = []
    raw: list[float] = []
    with append_sides(where) as (append, insert, payload_bytes):
        for _ in range(rounds):
            timed(append, per_round, ours, pause)
            timed(insert, per_round, raw, pause)
        parts = breakdown(append, profiled) if profiled else None
    posd_stats, raw_stats = summarize(ours), summarize(raw)
    return {
        "benchmark": "journal_append",
        "records_each": len(ours),
        "rounds": rounds,
        "payload_bytes": payload_bytes,
        "posd_append": posd_stats,
        "raw_sqlite_insert_commit": raw_stats,
        "throughput_ratio": round(posd_stats["appends_per_s"] / raw_stats["appends_per_s"], 3),
        "pragmas": "journal_mode=WAL synchronous=FULL secure_delete=ON",
        "pause_before_each_s": pause,
        "breakdown_us": parts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=4000, help="appends per side (default 4000)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds (default 8)")
    parser.add_argument(
        "--breakdown", type=int, default=1000, help="profiled appends for breakdown_us (0: none)"
    )
    parser.add_argument(
        "--dir", type=Path, default=Path.cwd(), help="where to put the files (a real disk)"
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="seconds slept before each timed operation, outside its time (default 0)",
    )
    args = parser.parse_args()
    if args.pause < 0:
        parser.error("--pause must be 0 or more seconds")
    with tempfile.TemporaryDirectory(prefix="posd-bench-", dir=args.dir) as scratch:
        result = run(args.records, args.rounds, Path(scratch), args.breakdown, args.pause)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
