"""Benchmark: the lane's footprint. Resident memory of its two daemons, idle and while
draining a backlog, each one's time from exec to READY=1, and the CLI's start-up time. Prints
one JSON object.

`posd run` (capture) and `posd sync run` (delivery) run as real subprocesses (development
config: local data key, simulated card reader and palm scanner), each with `NOTIFY_SOCKET`
pointing at a datagram socket of its own bound here, as systemd would; its READY is the moment
its `READY=1` datagram arrives. Capture starts first (it creates the journal delivery opens).
Memory is read from /proc/PID/status: VmRSS (now) and VmHWM (the peak since exec), for each
process and together. The draining run starts both on a journal holding `--backlog` pending
records (built fast by bench/backlog.py); delivery sends them to the local PutEvents endpoint
of bench/endpoint.py, and both are sampled.

    .venv/bin/python bench/footprint.py [--backlog N] [--runs R] [--history 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
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
from posd.journal import Journal  # noqa: E402

DEFAULT_BACKLOG = 100_000
DEFAULT_RUNS = 3
HISTORY_PENDING = 5_000  # as bench/cost_growth.py: the same cached journals serve both
READY_TIMEOUT_SECONDS = 60.0
IDLE_SETTLE_SECONDS = 3.0  # after READY: the first ticks, device opens and key prefetch done
SAMPLE_EVERY_SECONDS = 0.25
DRAIN_TIMEOUT_SECONDS = 600.0
STOP_TIMEOUT_SECONDS = 30.0
KIB = 1024
CAPTURE, DELIVERY = "capture", "delivery"
COMMANDS = {CAPTURE: ("run",), DELIVERY: ("sync", "run")}
# The targets on this 2-core machine (24: both processes together, and each READY).
TARGET_IDLE_RSS_MIB = 90.0
TARGET_READY_SECONDS = 1.0
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
    return _kib_fields(Path(f"/proc/{pid}/status"), ("VmRSS", "VmHWM"))


def lane_memory_kib(pid: int) -> dict[str, int]:
    """`memory_kib` and Pss: the resident pages with each shared one divided among the
    processes mapping it (the interpreter and libraries both daemons map count once between
    them, where their VmRSS counts them twice)."""
    return {**memory_kib(pid), **_kib_fields(Path(f"/proc/{pid}/smaps_rollup"), ("Pss",))}


def _kib_fields(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(":")
        if name in names:
            fields[name] = int(value.split()[0])
    return fields


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    ready_seconds: float


@dataclass
class Lane:
    """The lane's two daemons, each READY."""

    capture: Started
    delivery: Started

    def memory(self) -> dict[str, dict[str, int]]:
        return {name: lane_memory_kib(started.process.pid) for name, started in self.by_name()}

    def by_name(self) -> tuple[tuple[str, Started], ...]:
        return (CAPTURE, self.capture), (DELIVERY, self.delivery)


@contextmanager
def running_daemon(config: Path, where: Path, name: str) -> Iterator[Started]:
    """`posd <name's command>` as systemd starts it; yields once READY=1 arrived, stops it
    with SIGTERM (it must exit 0)."""
    notify_path = where / f"notify-{name}.sock"
    notify_path.unlink(missing_ok=True)
    log = where / f"{name}.log"
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
            [sys.executable, "-m", "posd", *COMMANDS[name], "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
        )
        try:
            ready = _wait_ready(notify, process, started, name)
            yield Started(process, ready)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=STOP_TIMEOUT_SECONDS)
            if code != 0:
                raise RuntimeError(f"posd {name} exited {code}; see {log}")


@contextmanager
def running_lane(config: Path, where: Path) -> Iterator[Lane]:
    """Capture, then delivery (it opens the journal capture made), each timed from its own
    exec to its own READY=1; stopped the other way round."""
    with (
        running_daemon(config, where, CAPTURE) as capture,
        running_daemon(config, where, DELIVERY) as delivery,
    ):
        yield Lane(capture, delivery)


def _wait_ready(
    notify: socket.socket, process: subprocess.Popen[bytes], started: float, name: str
) -> float:
    deadline = started + READY_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        notify.settimeout(max(0.01, min(1.0, deadline - time.perf_counter())))
        try:
            message = notify.recv(4096).decode()
        except TimeoutError:
            if process.poll() is not None:
                code = process.returncode
                raise RuntimeError(f"posd {name} exited {code} before READY") from None
            continue
        if "READY=1" in message.splitlines():
            return time.perf_counter() - started
    raise RuntimeError(f"posd {name} sent no READY=1 in time")


def _mib(kib: float) -> float:
    return round(kib / KIB, 1)


def _start_figures(ready: list[Lane], memory: list[dict[str, dict[str, int]]]) -> dict[str, Any]:
    """Median exec-to-READY and resident memory of each daemon over the runs, and together
    (VmRSS, and Pss: shared pages counted once)."""
    figures: dict[str, Any] = {}
    for name in COMMANDS:
        runs = [dict(lane.by_name())[name].ready_seconds for lane in ready]
        figures[name] = {
            "exec_to_ready_seconds": round(statistics.median(runs), 3),
            "exec_to_ready_runs": [round(r, 3) for r in runs],
            "rss_mib": _mib(statistics.median(m[name]["VmRSS"] for m in memory)),
            "peak_rss_mib": _mib(statistics.median(m[name]["VmHWM"] for m in memory)),
        }
    figures["rss_mib_together"] = _mib(
        statistics.median(sum(m[name]["VmRSS"] for name in COMMANDS) for m in memory)
    )
    figures["pss_mib_together"] = _mib(
        statistics.median(sum(m[name]["Pss"] for name in COMMANDS) for m in memory)
    )
    figures["exec_to_ready_seconds"] = max(
        figures[name]["exec_to_ready_seconds"] for name in COMMANDS
    )
    return figures


def _timed_starts(config: Path, where: Path, runs: int) -> dict[str, Any]:
    """`runs` fresh starts of both daemons: READY times and settled memory."""
    lanes: list[Lane] = []
    memory: list[dict[str, dict[str, int]]] = []
    for _ in range(runs):
        with running_lane(config, where) as lane:
            lanes.append(lane)
            time.sleep(IDLE_SETTLE_SECONDS)
            memory.append(lane.memory())
    return _start_figures(lanes, memory)


def idle(where: Path, endpoint: str, runs: int) -> dict[str, Any]:
    """Exec-to-READY of each daemon (each run fresh processes; the first one creates the
    journal) and the resident memory of both, idle on an empty journal."""
    where.mkdir(parents=True)
    config = write_daemon_config(where, endpoint)
    with running_lane(config, where) as first:
        # Untimed: creates the journal and key, and compiles the tree's bytecode (an
        # installed package ships it compiled; a fresh checkout's first start takes seconds).
        cold = {name: round(started.ready_seconds, 3) for name, started in first.by_name()}
    figures = _timed_starts(config, where, runs)
    return {**figures, "first_start_seconds": cold}


def _pending(state_dir: Path) -> int:
    with Journal.open_read_only(state_dir) as journal:
        return journal.summary().pending


def draining(where: Path, endpoint: str, backlog: int) -> dict[str, Any]:
    """Resident memory of both daemons while delivery sends a backlog of `backlog` records."""
    where.mkdir(parents=True)
    fill_started = time.perf_counter()
    fill_backlog(where / STATE_DIR, backlog, STORE_ID, TERMINAL_ID, durable=False)
    fill_seconds = time.perf_counter() - fill_started
    config = write_daemon_config(where, endpoint)
    samples: list[dict[str, dict[str, int]]] = []
    with running_lane(config, where) as lane:
        at_ready = lane.memory()
        drain_started = time.perf_counter()
        deadline = drain_started + DRAIN_TIMEOUT_SECONDS
        next_count = drain_started
        left = backlog
        while left and time.perf_counter() < deadline:
            time.sleep(SAMPLE_EVERY_SECONDS)
            samples.append(lane.memory())
            if time.perf_counter() >= next_count:
                left = _pending(where / STATE_DIR)
                next_count = time.perf_counter() + 1.0
        drain_seconds = time.perf_counter() - drain_started
        end = lane.memory()
    if left:
        raise RuntimeError(f"{left} records still pending after {DRAIN_TIMEOUT_SECONDS} s")
    figures: dict[str, Any] = {
        "backlog": backlog,
        "fill_seconds": round(fill_seconds, 2),
        "drain_seconds": round(drain_seconds, 2),
        "events_per_second": round(backlog / drain_seconds, 1),
    }
    for name, started in lane.by_name():
        rss = [sample[name]["VmRSS"] for sample in samples]
        figures[name] = {
            "exec_to_ready_seconds": round(started.ready_seconds, 3),
            "rss_at_ready_mib": _mib(at_ready[name]["VmRSS"]),
            "rss_draining_median_mib": _mib(statistics.median(rss)),
            "rss_draining_max_sampled_mib": _mib(max(rss)),
            "peak_rss_mib": _mib(end[name]["VmHWM"]),
        }
    together = [sum(sample[name]["VmRSS"] for name in COMMANDS) for sample in samples]
    figures["rss_draining_max_sampled_mib_together"] = _mib(max(together))
    return figures


def with_history(where: Path, endpoint: str, history: int, runs: int) -> dict[str, Any]:
    """Exec-to-READY and resident memory of both daemons on a journal already holding
    `history` records (all delivered but the last few thousand: bench/backlog.py's cached
    journals)."""
    source, _ = history_journal(history, HISTORY_PENDING, STORE_ID, TERMINAL_ID)
    copy_journal(source, where / STATE_DIR)
    config = write_daemon_config(where, endpoint)
    return {"records": history, **_timed_starts(config, where, runs)}


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
            "idle_rss": idle_figures["rss_mib_together"] <= TARGET_IDLE_RSS_MIB,
            "exec_to_ready": idle_figures["exec_to_ready_seconds"] < TARGET_READY_SECONDS,
            "help": cli["--help"] < TARGET_HELP_SECONDS,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
