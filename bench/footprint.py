"""Benchmark: the daemon's footprint. Resident memory idle and while draining a backlog, time
from exec to READY=1, and the CLI's start-up time. Prints one JSON object.

`posd run` runs as a real subprocess (development config: local data key, simulated card
reader and palm scanner) with `NOTIFY_SOCKET` pointing at a datagram socket bound here, as
systemd would; READY is the moment its `READY=1` datagram arrives. Memory is read from
/proc/PID/status: VmRSS (now) and VmHWM (the peak since exec). The draining run starts the
daemon on a journal holding `--backlog` pending records (built fast by bench/backlog.py)
and lets it deliver them to the local PutEvents endpoint of bench/drain.py, sampling VmRSS.

    .venv/bin/python bench/footprint.py [--backlog N] [--runs R] [--history 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backlog import copy_journal, fill_backlog, history_journal  # noqa: E402
from bench.cli_start import start_times  # noqa: E402
from bench.daemon_config import STATE_DIR, STORE_ID, TERMINAL_ID, write_daemon_config  # noqa: E402
from bench.endpoint import put_events_endpoint  # noqa: E402
from posd.journal import JOURNAL_FILE  # noqa: E402

DEFAULT_BACKLOG = 100_000
DEFAULT_RUNS = 3
HISTORY_PENDING = 5_000  # as bench/cost_growth.py: the same cached journals serve both
READY_TIMEOUT_SECONDS = 60.0
IDLE_SETTLE_SECONDS = 3.0  # after READY: the first ticks, device opens and key prefetch done
SAMPLE_EVERY_SECONDS = 0.25
DRAIN_TIMEOUT_SECONDS = 600.0
STOP_TIMEOUT_SECONDS = 30.0
KIB = 1024
# The targets on this 2-core machine.
TARGET_IDLE_RSS_MIB = 80.0
TARGET_READY_SECONDS = 1.5
TARGET_HELP_SECONDS = 0.3
# Credentials for the local endpoint, which checks no signature; never real ones.
BENCH_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
    "POSD_LOG_LEVEL": "warning",
}


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) of a live process, from /proc."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    ready_seconds: float


@contextmanager
def running_daemon(config: Path, where: Path) -> Iterator[Started]:
    """`posd run` as systemd starts it; yields once READY=1 arrived, stops it with SIGTERM."""
    notify_path = where / "notify.sock"
    notify_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        env = {
            **os.environ,
            **BENCH_ENV,
            "PYTHONPATH": str(ROOT),
            "NOTIFY_SOCKET": str(notify_path),
        }
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "posd", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(where / "daemon.log").open("ab"),
        )
        try:
            ready = _wait_ready(notify, process, started)
            yield Started(process, ready)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=STOP_TIMEOUT_SECONDS)
            if code != 0:
                raise RuntimeError(f"posd run exited {code}; see {where / 'daemon.log'}")


def _wait_ready(notify: socket.socket, process: subprocess.Popen[bytes], started: float) -> float:
    deadline = started + READY_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        notify.settimeout(max(0.01, min(1.0, deadline - time.perf_counter())))
        try:
            message = notify.recv(4096).decode()
        except TimeoutError:
            if process.poll() is not None:
                raise RuntimeError(f"posd run exited {process.returncode} before READY") from None
            continue
        if "READY=1" in message.splitlines():
            return time.perf_counter() - started
    raise RuntimeError("posd run sent no READY=1 in time")


def idle(where: Path, endpoint: str, runs: int) -> dict[str, Any]:
    """Exec-to-READY (each run a fresh process; the first one creates the journal) and the
    resident memory of an idle daemon with an empty journal."""
    where.mkdir(parents=True)
    config = write_daemon_config(where, endpoint)
    ready: list[float] = []
    memory: list[dict[str, int]] = []
    with running_daemon(config, where) as first:
        # Untimed: creates the journal and key, and compiles the tree's bytecode (an
        # installed package ships it compiled; a fresh checkout's first start takes seconds).
        cold = first.ready_seconds
    for _ in range(runs):
        with running_daemon(config, where) as daemon:
            ready.append(daemon.ready_seconds)
            time.sleep(IDLE_SETTLE_SECONDS)
            memory.append(memory_kib(daemon.process.pid))
    rss = statistics.median(m["VmRSS"] for m in memory) / KIB
    hwm = statistics.median(m["VmHWM"] for m in memory) / KIB
    return {
        "exec_to_ready_seconds": round(statistics.median(ready), 3),
        "exec_to_ready_runs": [round(r, 3) for r in ready],
        "first_start_seconds": round(cold, 3),
        "idle_rss_mib": round(rss, 1),
        "idle_peak_rss_mib": round(hwm, 1),
    }


def _pending(state_dir: Path) -> int:
    with sqlite3.connect(f"{(state_dir / JOURNAL_FILE).as_uri()}?mode=ro", uri=True) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM records WHERE state = 'pending'").fetchone()[0]
        )


def draining(where: Path, endpoint: str, backlog: int) -> dict[str, Any]:
    """Resident memory while the daemon delivers a backlog of `backlog` records."""
    where.mkdir(parents=True)
    fill_started = time.perf_counter()
    fill_backlog(where / STATE_DIR, backlog, STORE_ID, TERMINAL_ID, durable=False)
    fill_seconds = time.perf_counter() - fill_started
    config = write_daemon_config(where, endpoint)
    samples: list[int] = []
    with running_daemon(config, where) as daemon:
        pid = daemon.process.pid
        at_ready = memory_kib(pid)
        drain_started = time.perf_counter()
        deadline = drain_started + DRAIN_TIMEOUT_SECONDS
        next_count = drain_started
        left = backlog
        while left and time.perf_counter() < deadline:
            time.sleep(SAMPLE_EVERY_SECONDS)
            samples.append(memory_kib(pid)["VmRSS"])
            if time.perf_counter() >= next_count:
                left = _pending(where / STATE_DIR)
                next_count = time.perf_counter() + 1.0
        drain_seconds = time.perf_counter() - drain_started
        end = memory_kib(pid)
    if left:
        raise RuntimeError(f"{left} records still pending after {DRAIN_TIMEOUT_SECONDS} s")
    return {
        "backlog": backlog,
        "fill_seconds": round(fill_seconds, 2),
        "exec_to_ready_seconds": round(daemon.ready_seconds, 3),
        "rss_at_ready_mib": round(at_ready["VmRSS"] / KIB, 1),
        "rss_draining_median_mib": round(statistics.median(samples) / KIB, 1),
        "rss_draining_max_sampled_mib": round(max(samples) / KIB, 1),
        "peak_rss_mib": round(end["VmHWM"] / KIB, 1),
        "drain_seconds": round(drain_seconds, 2),
        "events_per_second": round(backlog / drain_seconds, 1),
    }


def with_history(where: Path, endpoint: str, history: int, runs: int) -> dict[str, Any]:
    """Exec-to-READY and resident memory of a daemon whose journal already holds `history`
    records (all delivered but the last few thousand: bench/backlog.py's cached journals)."""
    source, _ = history_journal(history, HISTORY_PENDING, STORE_ID, TERMINAL_ID)
    copy_journal(source, where / STATE_DIR)
    config = write_daemon_config(where, endpoint)
    ready: list[float] = []
    memory: list[dict[str, int]] = []
    for _ in range(runs):
        with running_daemon(config, where) as daemon:
            ready.append(daemon.ready_seconds)
            time.sleep(IDLE_SETTLE_SECONDS)
            memory.append(memory_kib(daemon.process.pid))
    return {
        "records": history,
        "exec_to_ready_seconds": round(statistics.median(ready), 3),
        "exec_to_ready_runs": [round(r, 3) for r in ready],
        "rss_mib": round(statistics.median(m["VmRSS"] for m in memory) / KIB, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backlog", type=int, default=DEFAULT_BACKLOG)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="starts timed (median)")
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="also start on a journal already holding this many records (cached; 0: skip)",
    )
    args = parser.parse_args()
    with put_events_endpoint() as endpoint, tempfile.TemporaryDirectory() as work:
        idle_figures = idle(Path(work) / "idle", endpoint, args.runs)
        drain_figures = draining(Path(work) / "drain", endpoint, args.backlog)
        history = (
            with_history(Path(work) / "history", endpoint, args.history, args.runs)
            if args.history
            else None
        )
    cli = start_times(args.runs, commands=(("--help",),))
    result = {
        "benchmark": "footprint",
        "idle": idle_figures,
        "draining": drain_figures,
        "with_history": history,
        "cli_start_seconds": cli,
        "targets": {
            "idle_rss_mib": TARGET_IDLE_RSS_MIB,
            "exec_to_ready_seconds": TARGET_READY_SECONDS,
            "help_seconds": TARGET_HELP_SECONDS,
        },
        "meets": {
            "idle_rss": idle_figures["idle_rss_mib"] < TARGET_IDLE_RSS_MIB,
            "exec_to_ready": idle_figures["exec_to_ready_seconds"] < TARGET_READY_SECONDS,
            "help": cli["--help"] < TARGET_HELP_SECONDS,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
