"""A fault-injecting HTTP proxy between boto3 and the moto server (loopback only).

boto3 is pointed at the proxy as its EventBridge endpoint. Each PutEvents request takes the
next `Fault` from a script (PASS when the script is empty); entries can also be failed one by
one by event_id (or a random fraction of all entries, `entry_fault_rate`), as EventBridge does
inside an HTTP 200. Failed entries are removed from what is forwarded, so moto (and the SQS
queue behind the rule) sees exactly what real EventBridge would have accepted. The proxy can
also stop listening (connection refused) and come back on the same port. Other requests (KMS,
for one) are forwarded as they are, so a second proxy can stand between boto3 and KMS and be
taken down. Sockets get TCP_NODELAY so that Nagle + delayed ACK do not add 40 ms a request.

EventBridge v2's PutEvents (smithy RPC v2 CBOR, `/service/AWSEventsV2/operation/PutEvents`,
in front of demo/localaws/eventbridge_v2.py) takes the same faults: the proxy reads and writes
CBOR for it (`V2`) instead of JSON (`V1`); the event_id is the entry's DeduplicationId.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import cbor2

from demo.localaws.eventbridge_v2 import PUT_EVENTS_PATH, SMITHY_PROTOCOL, error_body
from demo.localaws.serving import SERVER_POLL_SECONDS, NoDelayQuietMixin

LOOPBACK = "127.0.0.1"
PUT_EVENTS_TARGET = "AWSEvents.PutEvents"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "proxy-connection",
}


@dataclass(frozen=True)
class Codec:
    """How one PutEvents wire protocol reads and writes bodies and names its entries."""

    content_type: str
    loads: Callable[[bytes], Any]
    dumps: Callable[[Any], bytes]
    event_id: Callable[[dict[str, Any]], str]
    error: Callable[[str, str], bytes]


def _v1_event_id(entry: dict[str, Any]) -> str:
    return str(json.loads(entry.get("Detail", "{}")).get("event_id", ""))


def _v2_event_id(entry: dict[str, Any]) -> str:
    return str(entry.get("SystemMetadata", {}).get("DeduplicationId", ""))


V1 = Codec(
    JSON_CONTENT_TYPE,
    json.loads,
    lambda value: json.dumps(value).encode(),
    _v1_event_id,
    lambda code, message: json.dumps({"__type": code, "message": message}).encode(),
)
V2 = Codec("application/cbor", cbor2.loads, cbor2.dumps, _v2_event_id, error_body)


@dataclass(frozen=True)
class Fault:
    """What to do with one PutEvents request.

    kind: "pass", "drop" (close without answering, nothing forwarded), "delay" (wait
    `seconds`, then pass), "status" (answer HTTP `status` with error `code`, nothing
    forwarded) or "lose" (forward, so it IS delivered, then close without answering).
    """

    kind: str
    seconds: float = 0.0
    status: int = 0
    code: str = ""


PASS = Fault("pass")
DROP = Fault("drop")
LOSE = Fault("lose")


def delay(seconds: float) -> Fault:
    return Fault("delay", seconds=seconds)


def http_error(status: int, code: str) -> Fault:
    return Fault("status", status=status, code=code)


@dataclass
class Seen:
    """One PutEvents request as the proxy saw it."""

    event_ids: list[str]
    fault: str
    failed_entries: dict[str, str] = field(default_factory=dict)
    # Seconds from the request's arrival to its answer written (None: no answer was sent).
    # A forwarded request answered after the client's read timeout was delivered, but the
    # client never read the answer: it resends, exactly as for a lost answer.
    answered_after: float | None = None


class _QuietServer(ThreadingHTTPServer):
    """A client that hung up (a killed daemon, a timed-out request) is no news: no traceback.
    Keeps its open connections, for `FaultProxy.cut`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self.connections_lock:
            self.connections.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultProxy:
    def __init__(self, upstream_url: str, port: int = 0) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or LOOPBACK, parts.port or 80)
        self.script: deque[Fault] = deque()
        self.default = PASS
        # event_id -> [error code, how many more times to fail it]
        self.entry_faults: dict[str, list[Any]] = {}
        # (error code, fraction): fail that fraction of all entries, whatever their event_id
        self.entry_fault_rate: tuple[str, float] | None = None
        self._random = random.Random()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._port = port
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None
        self.up()

    # --- control ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._port}"

    def up(self) -> None:
        """Listen (again, on the same port)."""
        if self._server is not None:
            return
        handler = _make_handler(self)
        server = _QuietServer((LOOPBACK, self._port), handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": SERVER_POLL_SECONDS},
            daemon=True,
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening: new connections are refused."""
        self._stop(cut=False)

    def cut(self) -> None:
        """Stop listening and reset the connections open through the proxy too (a link that
        drops): a client's kept-alive connection fails as well as a new one."""
        self._stop(cut=True)

    def _stop(self, *, cut: bool) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            if cut:
                with server.connections_lock:
                    open_now = list(server.connections)
                for connection in open_now:
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def fail_entry(self, event_id: str, code: str, times: int = 1_000_000) -> None:
        with self._lock:
            self.entry_faults[event_id] = [code, times]

    def sent_event_ids(self) -> list[str]:
        """Every event_id in every PutEvents request, in order, duplicates kept."""
        with self._lock:
            return [eid for seen in self.seen for eid in seen.event_ids]

    # --- request path -----------------------------------------------------------------

    def next_fault(self) -> Fault:
        with self._lock:
            return self.script.popleft() if self.script else self.default

    def split_entries(
        self, body: dict[str, Any], codec: Codec = V1
    ) -> tuple[dict[int, str], list[dict[str, Any]]]:
        """Which entry positions to fail (with their code) and the entries to forward."""
        failed: dict[int, str] = {}
        forward: list[dict[str, Any]] = []
        with self._lock:
            for index, entry in enumerate(body.get("Entries", [])):
                event_id = codec.event_id(entry)
                fault = self.entry_faults.get(event_id)
                if fault and fault[1] > 0:
                    fault[1] -= 1
                    failed[index] = fault[0]
                elif self.entry_fault_rate and self._random.random() < self.entry_fault_rate[1]:
                    failed[index] = self.entry_fault_rate[0]
                else:
                    forward.append(entry)
        return failed, forward

    def record(
        self, body: dict[str, Any], fault: str, failed: dict[str, str], codec: Codec = V1
    ) -> Seen:
        ids = [codec.event_id(e) for e in body.get("Entries", [])]
        seen = Seen(ids, fault, failed)
        with self._lock:
            self.seen.append(seen)
        return seen

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()


def _splice(upstream_body: bytes, failed: dict[int, str], total: int, codec: Codec = V1) -> bytes:
    """Put error results back at the failed positions of an upstream PutEvents answer."""
    answer: dict[str, Any] = (
        codec.loads(upstream_body) if upstream_body else {"Entries": [], "FailedEntryCount": 0}
    )
    accepted = iter(answer.get("Entries", []))
    entries = []
    for index in range(total):
        if index in failed:
            code = failed[index]
            entries.append({"ErrorCode": code, "ErrorMessage": f"injected {code}"})
        else:
            entries.append(next(accepted))
    answer["Entries"] = entries
    answer["FailedEntryCount"] = sum(1 for e in entries if "ErrorCode" in e)
    return codec.dumps(answer)


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(NoDelayQuietMixin, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # A client that timed out meanwhile has hung up: nothing to tell it.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)
                self.wfile.flush()

        def _abort(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            if self.headers.get("X-Amz-Target") == PUT_EVENTS_TARGET:
                codec = V1
            elif (
                self.path == PUT_EVENTS_PATH
                and self.headers.get("smithy-protocol") == SMITHY_PROTOCOL
            ):
                codec = V2
            else:
                self._reply(*proxy.forward("POST", self.path, headers, raw))
                return
            arrived = time.monotonic()
            body = codec.loads(raw)
            fault = proxy.next_fault()
            if fault.kind in ("drop", "status"):
                proxy.record(body, fault.kind, {}, codec)
                if fault.kind == "drop":
                    self._abort()
                    return
                error = codec.error(fault.code, f"injected {fault.code}")
                self._reply(fault.status, [("Content-Type", codec.content_type)], error)
                return
            failed, forward = proxy.split_entries(body, codec)
            ids = [codec.event_id(e) for e in body["Entries"]]
            seen = proxy.record(
                body, fault.kind, {ids[i]: code for i, code in failed.items()}, codec
            )
            if fault.kind == "delay":
                # Recorded first: a client that timed out meanwhile has already moved on, and
                # the late request is still delivered below (like a slow real endpoint).
                time.sleep(fault.seconds)
            upstream: tuple[int, list[tuple[str, str]], bytes] = (
                200,
                [("Content-Type", codec.content_type)],
                b"",
            )
            if forward:
                forwarded = codec.dumps({**body, "Entries": forward})
                upstream = proxy.forward("POST", self.path, headers, forwarded)
            if fault.kind == "lose":
                self._abort()
                return
            status, reply_headers, reply = upstream
            if status == 200 and failed:
                reply = _splice(reply, failed, len(body["Entries"]), codec)
            elif status == 200 and not forward:
                reply = _splice(b"", failed, len(body["Entries"]), codec)
            self._reply(status, reply_headers, reply)
            seen.answered_after = time.monotonic() - arrived

    return Handler
