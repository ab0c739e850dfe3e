"""The stand-in EventBridge of bench/drain.py, started in its own process for a `with` block."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.drain import LOOPBACK, _serve

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 5


@contextmanager
def put_events_endpoint(rtt_seconds: float = 0.0) -> Iterator[str]:
    """Yield the URL of a local PutEvents endpoint that accepts every entry after the RTT."""
    context = multiprocessing.get_context("spawn")
    ports: Any = context.Queue()
    server = context.Process(target=_serve, args=(ports, rtt_seconds), daemon=True)
    server.start()
    try:
        yield f"http://{LOOPBACK}:{ports.get(timeout=START_TIMEOUT_SECONDS)}"
    finally:
        server.terminate()
        server.join(timeout=STOP_TIMEOUT_SECONDS)
