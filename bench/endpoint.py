"""A stand-in EventBridge for the delivery benchmarks: a loopback PutEvents endpoint.

It runs in its own process (so CPU figures taken in the caller are the caller's alone),
accepts every entry and answers after an injected round-trip delay. It checks no signature.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from posd.demo.emulator import NoDelayQuietMixin

LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 5.0


def serve_put_events(port_queue: Any, rtt_seconds: float) -> None:
    """The endpoint's process: accepts every entry after `rtt_seconds`; puts its port first."""

    class Handler(NoDelayQuietMixin, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(rtt_seconds)
            entries = [{"EventId": str(uuid.uuid4())} for _ in body["Entries"]]
            reply = json.dumps({"FailedEntryCount": 0, "Entries": entries}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


@contextmanager
def put_events_endpoint(rtt_seconds: float = 0.0) -> Iterator[str]:
    """The endpoint in a spawned process, for the duration of the block; yields its URL."""
    context = multiprocessing.get_context("spawn")
    ports: Any = context.Queue()
    server = context.Process(target=serve_put_events, args=(ports, rtt_seconds), daemon=True)
    server.start()
    try:
        yield f"http://{LOOPBACK}:{ports.get(timeout=START_TIMEOUT_SECONDS)}"
    finally:
        server.terminate()
        server.join(timeout=STOP_TIMEOUT_SECONDS)
