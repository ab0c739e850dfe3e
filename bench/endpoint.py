"""The benchmarks' stand-in EventBridge, started in its own process for a `with` block.

A threaded HTTP server answering PutEvents like EventBridge does at scale, in both wire
protocols (v1 JSON, v2 smithy RPC v2 CBOR): it accepts every entry, after an injected
round-trip delay. In its own process, so that the CPU figures of a benchmark are the
sender's alone.
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

import cbor2

from demo.localaws.eventbridge_v2 import PUT_EVENTS_PATH, SMITHY_PROTOCOL
from demo.localaws.serving import NoDelayQuietMixin

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 5
LOOPBACK = "127.0.0.1"


def _serve(port_queue: Any, rtt_seconds: float) -> None:
    """The stand-in EventBridge, v1 (JSON `AWSEvents.PutEvents`) and v2 (smithy RPC v2 CBOR):
    accepts every entry after `rtt_seconds`."""

    class Handler(NoDelayQuietMixin, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            v2 = self.path == PUT_EVENTS_PATH
            body = cbor2.loads(raw) if v2 else json.loads(raw)
            if rtt_seconds:
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
