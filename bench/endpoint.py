"""The benchmarks' stand-in EventBridge, started in its own process for a `with` block.

A threaded HTTP server answering PutEvents like EventBridge does at scale: it accepts every
entry, after an injected round-trip delay. In its own process, so that the CPU figures of a
benchmark are the sender's alone.
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

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 5
LOOPBACK = "127.0.0.1"


def _serve(port_queue: Any, rtt_seconds: float) -> None:
    """The stand-in EventBridge: accepts every entry after `rtt_seconds`."""

    class Handler(NoDelayQuietMixin, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if rtt_seconds:
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
