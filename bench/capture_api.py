"""Capture over the daemon's real API: idle, and while a large backlog drains.

The lane's two daemons run as subprocesses: `posd run` (capture, with the simulated card
reader and palm scanner: no added device latency, the card is presented as soon as the reader
is armed) and `posd sync run` (delivery, to the loopback PutEvents endpoint of
`bench/endpoint.py`, in its own process, answering at once: moto would measure moto). This
process plays the register, sending payments back to back over the Unix socket and timing
each answer. Two scenarios, one JSON object:

- `idle`: an empty journal, the link up: captures/s and p50/p99, side by side with the bare
  journal append and a raw `sqlite3` durable insert of the same size (bench/journal_append.py's
  two sides, in this process), interleaved in rounds so that the machine's drift (it is
  shared) affects all three alike.
- `draining`: the same with a backlog of `--backlog` records (default 100,000) in the journal
  when the daemon starts (the store back online in the lunch rush): capture p99 against the
  idle one, and the drain rate while the captures go on and right after them. `--pace-ms`
  spaces the payments (a real lane takes one every half minute at best; back to back is the
  worst case for both sides).

Both processes write the one journal: `append_lock_wait` says how long the timed payments'
appends waited for its write lock (the daemon's `posd_append_lock_wait_seconds`, read from
`GET /metrics` before and after): how many waited over 1 ms and over 5 ms, and in all. Capture
never waiting on delivery's transactions is 0, 0 and about 0 while draining.
`--without-delivery` runs capture alone on the same journals (nothing drains): the difference
is what the delivery process costs capture, its transactions and its CPU together.

The load average is printed with the figures: on a shared machine it says what they are worth.

    .venv/bin/python bench/capture_api.py [--captures N] [--backlog N] [--method card]
        [--rounds R] [--pace-ms MS] [--without-delivery]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bench.backlog import fill_backlog  # noqa: E402
from bench.daemon_config import (  # noqa: E402
    SOCKET,
    STATE_DIR,
    STORE_ID,
    TERMINAL_ID,
    write_daemon_config,
)
from bench.endpoint import put_events_endpoint  # noqa: E402
from bench.journal_append import append_sides, summarize, timed  # noqa: E402
from demo.pipeline import (  # noqa: E402
    start_daemon,
    stop,
    wait_until_delivering,
    wait_until_serving,
)
from posd.api_client import PAYMENT_ANSWER_TIMEOUT_S, DaemonClient  # noqa: E402

DEFAULT_CAPTURES = 2_000
DEFAULT_BACKLOG = 100_000
DEFAULT_ROUNDS = 8
WARMUP_CAPTURES = 20  # the first data key, imports, the reader's first arming
AFTER_CAPTURES_SECONDS = 3.0  # how long the drain rate is sampled once the captures stop
STOP_TIMEOUT_SECONDS = 30.0
AMOUNT_MINOR = 1250
# The bar (24), idle and while draining: capture p99 over the API under 5 ms, and
# while draining at most 1.5 times the idle one.
TARGET_P99_MS = 5.0
TARGET_DRAINING_OVER_IDLE = 1.5
METHODS = ("card", "palm")
DELIVERY_COMMAND = ("sync", "run")
LOCK_WAIT_METRIC = "posd_append_lock_wait_seconds"
WAIT_THRESHOLDS_S = (0.001, 0.005)  # bucket bounds of posd.journal.waits.WAIT_BUCKETS_S
INF, SUM = float("inf"), -1.0


@contextmanager
def running_daemons(work: Path, events_url: str, with_delivery: bool = True) -> Iterator[Path]:
    """`posd run` (capture), then `posd sync run` (delivery; not `with_delivery`: capture
    alone), on the config above until the block ends; both stopped with SIGTERM, delivery
    first, and both must exit 0."""
    config = write_daemon_config(work, events_url)
    capture_daemon = start_daemon(config, work / "daemon.log")
    try:
        wait_until_serving(work / SOCKET, capture_daemon)
        if not with_delivery:
            yield work / SOCKET
            return
        delivery = start_daemon(config, work / "delivery.log", DELIVERY_COMMAND)
        try:
            wait_until_delivering(work / STATE_DIR, delivery)
            yield work / SOCKET
        finally:
            _stopped(delivery, "posd sync run", work / "delivery.log")
    finally:
        _stopped(capture_daemon, "posd run", work / "daemon.log")


def _stopped(process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    code = stop(process)
    if code != 0:
        raise RuntimeError(f"{name} exited {code}: see {log}")


def pending(sock: Path) -> int:
    return DaemonClient(sock).status()["pending"]["count"]


def lock_waits(sock: Path) -> dict[float, float]:
    """The daemon's `posd_append_lock_wait_seconds` so far (posd/journal/waits.py): appends
    that waited at most each bucket's bound for the journal's write lock, by bound (`inf`:
    all), and the seconds waited in all (`SUM`)."""
    text = DaemonClient(sock).exchange("GET", "/metrics").text
    figures: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != LOCK_WAIT_METRIC:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                figures[float(sample.labels["le"])] = sample.value
            elif sample.name.endswith("_sum"):
                figures[SUM] = sample.value
    return figures


def waits_between(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """What the appends between two `lock_waits` waited for the journal's write lock: those
    that waited longer than each of `WAIT_THRESHOLDS_S`, and in all. Capture never waiting on
    delivery's transactions is every count at 0 and the total near 0."""
    appends = after[INF] - before[INF]
    return {
        "appends": int(appends),
        **{
            f"waited_over_{bound * 1000:g}_ms": int(
                appends - (after[bound] - before.get(bound, 0.0))
            )
            for bound in WAIT_THRESHOLDS_S
        },
        "total_waited_ms": round((after[SUM] - before.get(SUM, 0.0)) * 1000, 2),
    }


def capture(
    sock: Path, count: int, method: str, prefix: str, warmup: int = 0, pace_s: float = 0.0
) -> list[float]:
    """`count` payments (after `warmup` more), `pace_s` apart (0: back to back); the latency
    of each, in seconds."""
    api = DaemonClient(sock, PAYMENT_ANSWER_TIMEOUT_S)
    latencies: list[float] = []
    for index in range(warmup + count):
        body = {
            "client_ref": f"{prefix}-{index}",
            "amount_minor": AMOUNT_MINOR,
            "currency": "EUR",
            "method": method,
        }
        started = time.perf_counter()
        reply = api.exchange("POST", "/v1/payments", body)
        elapsed = time.perf_counter() - started
        if reply.status != 201:
            raise RuntimeError(f"payment {index} refused: {reply.body}")
        if index >= warmup:
            latencies.append(elapsed)
        if pace_s:
            time.sleep(pace_s)
    return latencies


def api_figures(latencies: list[float]) -> dict[str, float]:
    figures = summarize(latencies)
    return {"captures_per_s": figures.pop("appends_per_s"), **figures}


def idle(
    work: Path, captures: int, rounds: int, method: str, with_delivery: bool
) -> dict[str, Any]:
    """Rounds of API captures, bare appends and raw inserts, as many of each."""
    api: list[float] = []
    bare: list[float] = []
    raw: list[float] = []
    per_round = captures // rounds
    (work / "daemon").mkdir()
    (work / "append").mkdir()
    with (
        put_events_endpoint() as url,
        running_daemons(work / "daemon", url, with_delivery) as sock,
        append_sides(work / "append") as (append, insert, payload_bytes),
    ):
        capture(sock, 0, method, "warm", warmup=WARMUP_CAPTURES)
        waits_before = lock_waits(sock)
        for round_ in range(rounds):
            api.extend(capture(sock, per_round, method, f"idle{round_}"))
            timed(append, per_round, bare)
            timed(insert, per_round, raw)
        waits = waits_between(waits_before, lock_waits(sock))
    api_stats, bare_stats, raw_stats = api_figures(api), summarize(bare), summarize(raw)
    return {
        "api": api_stats,
        "bare_journal_append": bare_stats,
        "raw_sqlite_insert_commit": raw_stats,
        "api_append_lock_wait": waits,
        "payload_bytes": payload_bytes,
        "rounds": rounds,
        "api_p99_over_raw_p99": round(api_stats["p99_ms"] / raw_stats["p99_ms"], 2),
        "api_p50_over_bare_p50": round(api_stats["p50_ms"] / bare_stats["p50_ms"], 2),
        "bare_over_raw_throughput": round(
            bare_stats["appends_per_s"] / raw_stats["appends_per_s"], 3
        ),
    }


def draining(
    work: Path, captures: int, backlog: int, method: str, pace_s: float, with_delivery: bool
) -> dict[str, Any]:
    filled = time.perf_counter()
    fill_backlog(work / STATE_DIR, backlog, STORE_ID, TERMINAL_ID)
    fill_seconds = time.perf_counter() - filled
    with put_events_endpoint() as url, running_daemons(work, url, with_delivery) as sock:
        capture(sock, 0, method, "warm", warmup=WARMUP_CAPTURES)
        waits_before = lock_waits(sock)
        before, started = pending(sock), time.perf_counter()
        latencies = capture(sock, captures, method, "rush", 0, pace_s)
        during, ended = pending(sock), time.perf_counter()
        waits = waits_between(waits_before, lock_waits(sock))
        time.sleep(AFTER_CAPTURES_SECONDS)
        after, stopped = pending(sock), time.perf_counter()
    return {
        "backlog": backlog,
        "pace_ms": round(pace_s * 1000, 1),
        "fill_seconds": round(fill_seconds, 1),
        **api_figures(latencies),
        "append_lock_wait": waits,
        "pending_at_start": before,
        "pending_at_end": during,
        "drained_throughout": during > 0,
        "drain_events_per_s_while_capturing": round(
            (before + captures - during) / (ended - started), 1
        ),
        "drain_events_per_s_after": round((during - after) / (stopped - ended), 1),
    }


def run(
    captures: int,
    backlog: int,
    rounds: int,
    method: str,
    pace_s: float,
    where: Path,
    with_delivery: bool = True,
) -> dict[str, Any]:
    load_before = os.getloadavg()
    # A short prefix: the API socket is in it, and AF_UNIX paths end at 107 bytes.
    with tempfile.TemporaryDirectory(prefix="pb-", dir=where) as scratch:
        work = Path(scratch)
        (work / "idle").mkdir()
        (work / "rush").mkdir()
        at_rest = idle(work / "idle", captures, rounds, method, with_delivery)
        rush = (
            draining(work / "rush", captures, backlog, method, pace_s, with_delivery)
            if backlog
            else None
        )
    idle_p99 = at_rest["api"]["p99_ms"]
    result: dict[str, Any] = {
        "benchmark": "capture_api",
        "method": method,
        "captures": captures,
        "delivery_daemon": with_delivery,
        "endpoint": "loopback PutEvents stand-in (bench/endpoint.py), 0 ms added RTT",
        "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
        "idle": at_rest,
        "target_p99_ms": TARGET_P99_MS,
        "meets_target_idle": idle_p99 < TARGET_P99_MS,
    }
    if rush is not None:
        result["draining"] = rush
        result["draining_p99_over_idle_p99"] = round(rush["p99_ms"] / idle_p99, 2)
        result["meets_target_draining"] = (
            rush["p99_ms"] < TARGET_P99_MS
            and result["draining_p99_over_idle_p99"] <= TARGET_DRAINING_OVER_IDLE
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--captures", type=int, default=DEFAULT_CAPTURES)
    parser.add_argument(
        "--backlog", type=int, default=DEFAULT_BACKLOG, help="0: the idle scenario only"
    )
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="idle: interleaved")
    parser.add_argument("--pace-ms", type=float, default=0.0, help="draining: between payments")
    parser.add_argument("--method", choices=METHODS, default=METHODS[0])
    parser.add_argument(
        "--dir", type=Path, default=Path.cwd(), help="where to put the files (a real disk)"
    )
    parser.add_argument(
        "--without-delivery",
        action="store_true",
        help="capture alone (nothing drains): what delivery's process costs capture, by difference",
    )
    args = parser.parse_args()
    result = run(
        args.captures,
        args.backlog,
        args.rounds,
        args.method,
        args.pace_ms / 1000,
        args.dir,
        not args.without_delivery,
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
