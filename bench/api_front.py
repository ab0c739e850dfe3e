"""The register's API while slow and idle clients and long flushes are held: old front and new.

`posd run` is started twice in one run, on the same config: served by waitress as it was
(`bench/waitress_front.py`, the same daemon with only the server swapped) and by the current
front (uvicorn, `posd/daemon/server.py`), each with the delivery daemon (`posd sync run`)
beside it. Delivery goes to a black hole (a TCP listener that never accepts), so one
journaled payment stays pending and every flush waits out its whole timeout. Against each,
`--peers` processes hold `--idle` silent connections, `--slowloris` connections sending a
request head one byte every `--drip-s` seconds, and `--flushes` `POST /v1/sync/flush` with
`timeout_s` 120 between them (each process is a peer of its own to the daemon's per-process
cap), while this process times `--payments` card payments and `--cancels` cancels of a palm
payment that waits for a palm nobody presents. A request that got no answer within
`--answer-timeout-s` counts at that figure, and as timed out.
The same payments with nothing held first give each front's own baseline.

    .venv/bin/python bench/api_front.py [--idle 100] [--slowloris 100] [--flushes 20]
        [--peers 8] [--payments 30] [--cancels 5] [--answer-timeout-s 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.daemon_config import SOCKET, STATE_DIR, write_daemon_config  # noqa: E402
from bench.hostile_clients import hostile_peers  # noqa: E402
from demo.pipeline import stop, wait_until_delivering, wait_until_serving  # noqa: E402
from posd.api_client import DaemonClient  # noqa: E402

FRONTS = {
    "waitress (before)": ["-m", "bench.waitress_front"],
    "uvicorn (now)": ["-m", "posd"],
}
DELIVERY = ["-m", "posd", "sync", "run"]  # the same for both fronts
FLUSH_TIMEOUT_S = 120.0
PALM_WAIT_S = 60.0
SETTLE_S = 1.0  # for the flushes to reach the daemon's app before the register is timed
IN_PROGRESS_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 30.0
TARGET_P99_S = 1.0
AMOUNT_MINOR = 1250
LOOPBACK = "127.0.0.1"


@contextmanager
def black_hole() -> Iterator[str]:
    """An endpoint URL whose connections are never accepted nor answered."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(1024)
    try:
        yield f"http://{LOOPBACK}:{listener.getsockname()[1]}"
    finally:
        listener.close()


@contextmanager
def daemon(front: list[str], work: Path, events_url: str) -> Iterator[Path]:
    """The capture daemon served by `front`, and the delivery daemon (`posd sync run`,
    sending to `events_url`) beside it: a flush waits on delivery, and ends at once without
    one. Both stopped when the block ends."""
    config = write_daemon_config(work, events_url, palm_present=None)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }

    def start(command: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with (work / log_name).open("wb") as log:
            return subprocess.Popen(
                [sys.executable, *command, "--config", str(config)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )

    capture = start([*front, "run"], "daemon.log")
    delivery: subprocess.Popen[bytes] | None = None
    try:
        wait_until_serving(work / SOCKET, capture)
        delivery = start(DELIVERY, "delivery.log")
        wait_until_delivering(work / STATE_DIR, delivery)
        yield work / SOCKET
    finally:
        for process in (delivery, capture):
            if process is not None:
                stop(process)


def timed(sock: Path, method: str, route: str, body: Any, limit_s: float) -> tuple[float, Any]:
    """Seconds to the answer (`limit_s` if none came) and the answer (None if none)."""
    started = time.perf_counter()
    try:
        reply = DaemonClient(sock, limit_s).exchange(method, route, body)
    except (OSError, http.client.HTTPException):
        return limit_s, None
    return time.perf_counter() - started, reply


def payment(ref: str, method: str, **extra: Any) -> dict[str, Any]:
    body = {"client_ref": ref, "amount_minor": AMOUNT_MINOR, "currency": "EUR", "method": method}
    return {**body, **extra}


def pay_all(sock: Path, prefix: str, count: int, limit_s: float) -> tuple[list[float], int]:
    """`count` card payments one after another: their latencies and how many were captured."""
    latencies: list[float] = []
    paid = 0
    for index in range(count):
        took, reply = timed(
            sock, "POST", "/v1/payments", payment(f"{prefix}{index}", "card"), limit_s
        )
        latencies.append(took)
        paid += reply is not None and reply.status == 201
    return latencies, paid


def cancel_once(sock: Path, ref: str, limit_s: float) -> tuple[float, Any]:
    """Start a palm payment nobody completes, then time its cancel."""
    waiting = threading.Thread(
        target=timed,
        args=(sock, "POST", "/v1/payments", payment(ref, "palm", timeout_s=PALM_WAIT_S), 150.0),
        daemon=True,
    )
    waiting.start()
    deadline = time.monotonic() + IN_PROGRESS_TIMEOUT_S
    while time.monotonic() < deadline:
        _, reply = timed(sock, "GET", f"/v1/payments/{ref}", None, limit_s)
        if reply is not None and reply.status == 200 and reply.body["state"] == "in_progress":
            break
        time.sleep(0.05)
    took, reply = timed(sock, "POST", f"/v1/payments/{ref}/cancel", None, limit_s)
    waiting.join(limit_s)
    return took, reply


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def figures(latencies: list[float], answered: int) -> dict[str, Any]:
    return {
        "count": len(latencies),
        "answered": answered,
        "timed_out": len(latencies) - answered,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def measure(front: list[str], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    limit = args.answer_timeout_s
    with black_hole() as url, daemon(front, work, url) as sock:
        _, reply = timed(sock, "POST", "/v1/payments", payment("pending", "card"), limit)
        if reply is None or reply.status != 201:
            raise RuntimeError(f"the first payment was not captured: {reply}")
        unloaded, unloaded_paid = pay_all(sock, "u", args.payments, limit)
        with hostile_peers(
            sock, args.peers, args.idle, args.slowloris, args.flushes, FLUSH_TIMEOUT_S, args.drip_s
        ) as tally:
            time.sleep(SETTLE_S)
            pay, paid = pay_all(sock, "p", args.payments, limit)
            cancel: list[float] = []
            cancelled = 0
            for index in range(args.cancels):
                took, reply = cancel_once(sock, f"c{index}", limit)
                cancel.append(took)
                cancelled += reply is not None and reply.body.get("state") == "cancelled"
            took, reply = timed(sock, "GET", "/v1/status", None, limit)
    return {
        "payments_nothing_held": figures(unloaded, unloaded_paid),
        "payments": figures(pay, paid),
        "cancels": figures(cancel, cancelled),
        "status_ms": round(took * 1000, 1),
        "status_answered": reply is not None and reply.status == 200,
        "hostile_connects_failed": tally.failed_connects,
        "hostile_connections_open_at_end": tally.open_at_end,
        "meets_target": max(percentile(pay, 0.99), percentile(cancel, 0.99)) < TARGET_P99_S,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--slowloris", type=int, default=100)
    parser.add_argument("--flushes", type=int, default=20)
    parser.add_argument("--peers", type=int, default=8, help="processes they are spread over")
    parser.add_argument("--drip-s", type=float, default=2.0)
    parser.add_argument("--payments", type=int, default=30)
    parser.add_argument("--cancels", type=int, default=5)
    parser.add_argument("--answer-timeout-s", type=float, default=5.0)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    result: dict[str, Any] = {
        "benchmark": "api_front",
        "held": {
            "idle": args.idle,
            "slowloris": args.slowloris,
            "slowloris_drip_s": args.drip_s,
            "flushes": args.flushes,
            "peer_processes": args.peers,
            "flush_timeout_s": FLUSH_TIMEOUT_S,
        },
        "answer_timeout_s": args.answer_timeout_s,
        "target_p99_ms": TARGET_P99_S * 1000,
    }
    with tempfile.TemporaryDirectory(prefix="posd-front-") as scratch:
        for index, (name, front) in enumerate(FRONTS.items()):
            work = Path(scratch) / str(index)
            work.mkdir()
            result[name] = measure(front, work, args)
    result["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
