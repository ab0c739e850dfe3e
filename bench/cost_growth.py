"""Benchmark: how costs grow with the journal. Append latency, the backlog check every payment
makes, drain memory, `journal verify` time per record and bytes on disk per record, with
10,000 and (by default) 200,000 records already in the journal; `--sizes 10000 1000000` for
the issue's million. Prints one JSON object with the ratios largest/smallest.

At each size the journal holds that many card payments, all delivered (kept within the
retention period) except the last `--backlog`, which are pending: a busy lane's day. They are
built once through the real capture path (bench/backlog.py: `Recorder` seals, chains and
appends each one) without the per-commit fsync, then marked delivered through
`Journal.mark_delivered`; the result is cached under bench/results/journals/ (gitignored)
and copied for each run, so later runs skip the build. Measured on each copy:

- `journal verify` (read-only open, every chain link and ciphertext) seconds per record;
- bytes on disk per record;
- drain memory: a fresh process (spawned) opens the journal and drains the backlog to the
  local PutEvents endpoint of bench/drain.py; VmRSS before opening and VmHWM after;
- the retention purge (`--purge-only`: that alone): its total time and the longest a capture
  waited for the journal's lock meanwhile, with `--purge-expired` records past retention and
  then with none;
- append latency: `--appends` durable appends (synchronous=FULL, as the daemon does), each
  preceded by `Journal.summary()`, which `POST /v1/payments` runs for the offline limits
  (the backlog check; its first call, which the daemon makes at start, is shown apart).

    .venv/bin/python bench/cost_growth.py [--sizes 10000 1000000] [--backlog N] [--appends N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from bench.backlog import (  # noqa: E402
    CACHE,
    KEY_FILE,
    PAYMENT_KIND,
    PAYMENT_META,
    PAYMENT_SECRET,
    copy_journal,
    history_journal,
)
from bench.endpoint import put_events_endpoint  # noqa: E402
from bench.footprint import KIB, memory_kib  # noqa: E402
from bench.journal_append import percentile  # noqa: E402
from posd.assembly import engine_for  # noqa: E402
from posd.journal import Journal  # noqa: E402
from posd.keys.local import LocalKeySource  # noqa: E402
from posd.keys.provider import RotatingKeyProvider  # noqa: E402
from posd.logs import configure_logging  # noqa: E402
from posd.recorder import Recorder  # noqa: E402
from sync.settings import SyncSettings  # noqa: E402

DEFAULT_SIZES = (10_000, 200_000)
DEFAULT_BACKLOG = 5_000
DEFAULT_APPENDS = 500
DEFAULT_ROUNDS = 10
STORE_ID, TERMINAL_ID = "store-bench", "lane-01"
DRAIN_TIMEOUT_SECONDS = 600.0
CHILD_TIMEOUT_SECONDS = 900.0
CHILD_POLL_SECONDS = 1.0
BENCH_KEY = "bench"  # the local endpoint checks no signature
# The cached history must stay "within retention" however old the cache is: the drain's own
# purge must not change what is measured. The purge is measured apart (`purge_cost`), with a
# fixed number of records set past this retention on the copy.
RETENTION_SECONDS = 10 * 365 * 86_400.0
# The purge measurement: this many of the oldest delivered records are set past retention.
DEFAULT_PURGE_EXPIRED = 5_000
PROBE_PAUSE_SECONDS = 0.000_2  # between two takes of the lock by the probe
# The bar: at 1M records, append latency and drain memory within 1.2x of 10k.
TARGET_RATIO = 1.2


def _drain_child(state_dir: str, endpoint: str, results: Any) -> None:
    """In a fresh process: open the journal, drain its backlog, report memory and time."""
    before = memory_kib_self()
    configure_logging("error")  # stderr: the parent's stdout is the benchmark's JSON
    # Nothing is purged while draining (the cloud's proof may not come sooner than retention).
    settings = dataclasses.replace(
        SyncSettings(),
        retention_seconds=RETENTION_SECONDS,
        max_unacknowledged_seconds=RETENTION_SECONDS,
    )
    session = boto3.Session(
        aws_access_key_id=BENCH_KEY, aws_secret_access_key=BENCH_KEY, region_name="us-east-1"
    )
    started = time.perf_counter()
    with (
        Journal.open(Path(state_dir)) as journal,
        engine_for(
            journal,
            settings,
            store_id=STORE_ID,
            terminal_id=TERMINAL_ID,
            endpoint_url=endpoint,
            session=session,
        ) as engine,
    ):
        report = engine.drain(timeout=DRAIN_TIMEOUT_SECONDS)
    seconds = time.perf_counter() - started
    after = memory_kib_self()
    results.put(
        {
            "delivered": report.delivered,
            "seconds": seconds,
            "rss_before_kib": before["VmRSS"],
            "peak_kib": after["VmHWM"],
            "rss_after_kib": after["VmRSS"],
        }
    )


def memory_kib_self() -> dict[str, int]:
    return memory_kib(os.getpid())


def drain_memory(state_dir: Path, endpoint: str, backlog: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    child = context.Process(target=_drain_child, args=(str(state_dir), endpoint, results))
    child.start()
    deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
    try:
        while True:  # a child that died without an answer fails the run now, not in 15 min
            try:
                figures: dict[str, Any] = results.get(timeout=CHILD_POLL_SECONDS)
                break
            except queue.Empty:
                if not child.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the drain child gave no figures (exit {child.exitcode})"
                    ) from None
    finally:
        child.join(timeout=CHILD_TIMEOUT_SECONDS)
    if figures["delivered"] != backlog:
        raise RuntimeError(f"drained {figures['delivered']} of {backlog}")
    return {
        "drained": backlog,
        "seconds": round(figures["seconds"], 2),
        "events_per_second": round(backlog / figures["seconds"], 1),
        "rss_before_open_mib": round(figures["rss_before_kib"] / KIB, 1),
        "peak_rss_mib": round(figures["peak_kib"] / KIB, 1),
        "growth_mib": round((figures["peak_kib"] - figures["rss_before_kib"]) / KIB, 1),
    }


class Appender:
    """One journal open as the daemon has it, appending as a payment does."""

    def __init__(self, stack: ExitStack, state_dir: Path) -> None:
        self.journal = stack.enter_context(Journal.open(state_dir))
        keys = stack.enter_context(RotatingKeyProvider(LocalKeySource(state_dir / KEY_FILE)))
        keys.wait_ready(10)
        self.recorder = Recorder(self.journal, keys, STORE_ID, TERMINAL_ID)
        self.checks: list[float] = []
        self.writes: list[float] = []
        # The first summary counts the delivered records once (a scan of the whole journal);
        # the daemon makes it before READY (systemd's STATUS= line), never in a payment.
        started = time.perf_counter()
        self.journal.summary()
        self.first_summary = time.perf_counter() - started

    def payment(self) -> None:
        started = time.perf_counter()
        self.journal.summary()
        checked = time.perf_counter()
        self.recorder.record(PAYMENT_KIND, PAYMENT_META, PAYMENT_SECRET)
        self.writes.append(time.perf_counter() - checked)
        self.checks.append(checked - started)

    def figures(self) -> dict[str, Any]:
        writes, checks = self.writes, self.checks
        return {
            "appends": len(writes),
            "first_summary_ms": _ms(self.first_summary),
            "append_p50_ms": _ms(percentile(writes, 0.5)),
            "append_p99_ms": _ms(percentile(writes, 0.99)),
            "append_mean_ms": _ms(statistics.fmean(writes)),
            "backlog_check_p50_ms": _ms(percentile(checks, 0.5)),
            "backlog_check_p99_ms": _ms(percentile(checks, 0.99)),
            "backlog_check_mean_ms": _ms(statistics.fmean(checks)),
        }


def append_latency(state_dirs: list[Path], appends: int, rounds: int) -> list[dict[str, Any]]:
    """Durable appends (the daemon's settings), each after the capture path's backlog check,
    on every journal in turn, in interleaved rounds: drift in this shared machine's load
    hits every size alike, so the ratios are about the journal, not the minute."""
    with ExitStack() as stack:
        appenders = [Appender(stack, state_dir) for state_dir in state_dirs]
        for _ in range(rounds):
            for appender in appenders:
                for _ in range(appends // rounds):
                    appender.payment()
        return [appender.figures() for appender in appenders]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def measure(size: int, backlog: int, endpoint: str, state_dir: Path) -> dict[str, Any]:
    """Everything but the appends (`append_latency`) on a fresh copy of the size's journal."""
    source, built = history_journal(size, backlog, STORE_ID, TERMINAL_ID)
    copy_journal(source, state_dir)
    with Journal.open_read_only(state_dir) as journal:
        size_bytes = journal.size_on_disk()
        started = time.perf_counter()
        report = journal.verify()
        verify_seconds = time.perf_counter() - started
    if not report.ok or report.records_checked != size:
        raise RuntimeError(f"verify at {size}: {report}")
    figures = {
        "records": size,
        "built_seconds": None if built is None else round(built, 1),
        "bytes_per_record": round(size_bytes / size, 1),
        "verify_seconds": round(verify_seconds, 2),
        "verify_us_per_record": round(verify_seconds / size * 1e6, 2),
        "drain": drain_memory(state_dir, endpoint, backlog),
    }
    return figures


class LockProbe:
    """A thread that takes the journal's lock over and over, as a capture arriving at any
    moment would (`Journal.append` takes it first): its longest wait is the longest the
    purge kept a payment waiting. The lock also spans each SQLite write transaction."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._stop = threading.Event()
        self.longest = 0.0
        self.probes = 0
        self._thread = threading.Thread(target=self._run, name="lock-probe")

    def _run(self) -> None:
        lock = self._journal.inspection.lock
        while not self._stop.is_set():
            asked = time.perf_counter()
            with lock:
                waited = time.perf_counter() - asked
            self.longest = max(self.longest, waited)
            self.probes += 1
            time.sleep(PROBE_PAUSE_SECONDS)

    def __enter__(self) -> LockProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_purge(journal: Journal, delivered_before: float) -> dict[str, Any]:
    with LockProbe(journal) as probe:
        time.sleep(PROBE_PAUSE_SECONDS * 2)  # the probe is running before the purge starts
        started = time.perf_counter()
        erased = journal.purge_delivered(delivered_before)
        seconds = time.perf_counter() - started
    return {
        "erased": erased,
        "total_ms": _ms(seconds),
        "longest_lock_wait_ms": _ms(probe.longest),
        "probes": probe.probes,
    }


def purge_cost(state_dir: Path, expired: int) -> dict[str, Any]:
    """The retention purge on a copy of the journal, as the sync engine runs it (at start,
    then every purge_interval_seconds): first with the oldest `expired` delivered records past
    retention (the same count at every size: purge should cost what it purges), then again
    with nothing left to purge (the usual tick). Setting their delivery time back is setup."""
    with Journal.open(state_dir) as journal:
        cutoff = time.time() - RETENTION_SECONDS
        delivery = journal.inspection.delivery  # delivery's own database (outcomes.py)
        assert delivery is not None
        delivery.execute(
            "UPDATE outcomes SET delivered_at = ? WHERE seq <= ? AND state = 'delivered'",
            (cutoff - 1, expired),
        )
        due = timed_purge(journal, cutoff)
        if due["erased"] != expired:
            raise RuntimeError(f"purged {due['erased']} of {expired}")
        return {"expired": due, "nothing_due": timed_purge(journal, cutoff)}


def ratios(small: dict[str, Any], big: dict[str, Any]) -> dict[str, float]:
    def ratio(a: float, b: float) -> float:
        return round(b / a, 3) if a else float("nan")

    return {
        "append_p50": ratio(small["append_p50_ms"], big["append_p50_ms"]),
        "append_mean": ratio(small["append_mean_ms"], big["append_mean_ms"]),
        "append_p99": ratio(small["append_p99_ms"], big["append_p99_ms"]),
        "backlog_check_p50": ratio(small["backlog_check_p50_ms"], big["backlog_check_p50_ms"]),
        "backlog_check_mean": ratio(small["backlog_check_mean_ms"], big["backlog_check_mean_ms"]),
        "drain_peak_rss": ratio(small["drain"]["peak_rss_mib"], big["drain"]["peak_rss_mib"]),
        "drain_events_per_second": ratio(
            small["drain"]["events_per_second"], big["drain"]["events_per_second"]
        ),
        "verify_per_record": ratio(small["verify_us_per_record"], big["verify_us_per_record"]),
        "bytes_per_record": ratio(small["bytes_per_record"], big["bytes_per_record"]),
        **purge_ratios(small, big),
    }


def purge_ratios(small: dict[str, Any], big: dict[str, Any]) -> dict[str, float]:
    def ratio(a: float, b: float) -> float:
        return round(b / a, 3) if a else float("nan")

    return {
        f"purge_{case}_{figure}": ratio(small["purge"][case][figure], big["purge"][case][figure])
        for case in ("expired", "nothing_due")
        for figure in ("total_ms", "longest_lock_wait_ms")
    }


def main() -> None:
    configure_logging("error")  # stderr: stdout is this benchmark's JSON
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--backlog", type=int, default=DEFAULT_BACKLOG)
    parser.add_argument("--appends", type=int, default=DEFAULT_APPENDS, help="per size")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="interleaved")
    parser.add_argument(
        "--purge-expired", type=int, default=DEFAULT_PURGE_EXPIRED, help="records past retention"
    )
    parser.add_argument("--purge-only", action="store_true", help="measure the purge alone")
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    CACHE.mkdir(parents=True, exist_ok=True)
    if args.purge_only:
        print(json.dumps(purge_only(sizes, args.backlog, args.purge_expired), indent=2))
        return
    with put_events_endpoint() as endpoint, tempfile.TemporaryDirectory(dir=CACHE.parent) as work:
        state_dirs = [Path(work) / f"state-{n}" for n in sizes]
        runs = [
            measure(n, args.backlog, endpoint, d) for n, d in zip(sizes, state_dirs, strict=True)
        ]
        appended = append_latency(state_dirs, args.appends, args.rounds)
        for run, figures in zip(runs, appended, strict=True):
            run.update(figures)
        for run, state_dir in zip(runs, state_dirs, strict=True):
            run["purge"] = purge_cost(state_dir, args.purge_expired)
    growth = ratios(runs[0], runs[-1])
    result = {
        "benchmark": "cost_growth",
        "backlog": args.backlog,
        "runs": runs,
        f"ratios_{sizes[-1]}_to_{sizes[0]}": growth,
        "target_ratio": TARGET_RATIO,
        "meets": {
            "append_latency": growth["append_mean"] <= TARGET_RATIO
            and growth["backlog_check_mean"] <= TARGET_RATIO,
            "drain_memory": growth["drain_peak_rss"] <= TARGET_RATIO,
        },
    }
    print(json.dumps(result, indent=2))


def purge_only(sizes: list[int], backlog: int, expired: int) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as work:
        for size in sizes:
            state_dir = Path(work) / f"state-{size}"
            copy_journal(history_journal(size, backlog, STORE_ID, TERMINAL_ID)[0], state_dir)
            runs.append({"records": size, "purge": purge_cost(state_dir, expired)})
            shutil.rmtree(state_dir)
    return {
        "benchmark": "cost_growth --purge-only",
        "runs": runs,
        f"ratios_{sizes[-1]}_to_{sizes[0]}": purge_ratios(runs[0], runs[-1]),
    }


if __name__ == "__main__":
    main()
