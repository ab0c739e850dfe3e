"""A local EventBridge v2 endpoint (`eventbridgev2` PutEvents, and the DescribeEventBus
`posd doctor` reads) for the demo, tests and benchmarks.

moto does not emulate EventBridge v2, so this small threaded HTTP server does, speaking the
real wire protocol to the real `boto3.client("eventbridgev2", endpoint_url=...)`: smithy
RPC v2 CBOR (`POST /service/AWSEventsV2/operation/PutEvents`, header
`smithy-protocol: rpc-v2-cbor`, `application/cbor` bodies; errors as an HTTP status and a CBOR
map whose `__type` names the error shape). Requests are checked against botocore's own model
of the service (required members, unknown members, lengths, patterns, list sizes, types):
the model is the contract, as it is for the client.

What it does with an accepted entry: it forwards the event to the SQS queue the bus was
created with, as the same EventBridge envelope JSON a v1 bus rule delivers (`version`, `id`,
`detail-type`, `source`, `account`, `time`, `region`, `resources`, `detail`), so a backend
reads v1 and v2 alike.

Behaviours that are ASSUMPTIONS about the real service (the model does not pin them down):

- Deduplication: an entry whose `DeduplicationId` the bus accepted less than
  `dedup_window_seconds` ago (default 300 s, the window of SQS FIFO queues) is not published
  again. It is answered as a success, `SuccessCode: DEDUPLICATED`, with the ORIGINAL
  `EventId` and `SequenceNumber` (the model's `SuccessCode` enum has `DEDUPLICATED`; that the
  original ids come back is our choice). The scope is the bus (not the event group). After
  the window a resend is published again: exactly once holds only for resends within it.
- Ordering: entries of one `EventGroupId` are accepted and forwarded in order, one request
  of a group at a time, with a `SequenceNumber` that increases by one per published entry.
  Different groups proceed in parallel.
- Size: the 1 MB request cap counts, per entry, the UTF-8 bytes of Source, DetailType,
  Detail and each Resource, 14 bytes for Time (as v1 does), plus DeduplicationId and
  EventGroupId (sync/eventbridge/v2.py counts the same). Over the cap:
  `InvalidInputException`, nothing published (as the model documents).
- Per-entry errors: a Detail that is not a JSON object is refused per entry with
  `InvalidInputException`; a failure to forward to SQS is `InternalException` for the
  entries concerned (retryable; not remembered for deduplication).
- Authentication: SigV4 headers are required to be present, not verified.

Test knobs (they stand in for what the real service may do and we cannot provoke):
`throttle_next(n)` answers the next n PutEvents requests `ThrottlingException` (HTTP 429);
`fail_entry(dedup_id, code, times)` fails that entry inside an HTTP 200.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import cbor2

from demo.backend import QueueRoute
from demo.localaws import model
from demo.localaws.emulator import EMULATOR_REGION
from demo.localaws.model import validate
from demo.localaws.serving import (
    LOOPBACK,
    BackgroundServer,
    LoopbackHTTPServer,
    NoDelayQuietMixin,
)
from posd.errors import PosdError
from sync.eventbridge.v2 import V2_MAX_REQUEST_BYTES, V2_SERVICE_NAME, system_metadata_bytes
from sync.events import TIME_FIELD_BYTES

TARGET_PREFIX = "AWSEventsV2"  # the model's targetPrefix: the URL path names it
PUT_EVENTS_PATH = f"/service/{TARGET_PREFIX}/operation/PutEvents"
OPERATION_PATH = re.compile(rf"/service/{TARGET_PREFIX}/operation/(?P<operation>[A-Za-z]+)")
SMITHY_PROTOCOL = "rpc-v2-cbor"
CBOR_CONTENT_TYPE = "application/cbor"
ERROR_NAMESPACE = "com.amazonaws.eventbridgev2"
ACCOUNT_ID = "123456789012"  # moto's default account: the queue lives there too
BUS_ID_LENGTH = 25
BUS_ID_ALPHABET = string.ascii_lowercase + string.digits
DEFAULT_DEDUP_WINDOW_SECONDS = 300.0
SQS_BATCH = 10
ENVELOPE_VERSION = "0"
PUBLISHED = "PUBLISHED"
DEDUPLICATED = "DEDUPLICATED"
ENDPOINT_REGION = EMULATOR_REGION

# Error shapes of the model (code -> HTTP status, from each shape's `error.httpStatusCode`).
ACCESS_DENIED = "AccessDeniedException"
NOT_FOUND = "ResourceNotFoundException"
THROTTLED = "ThrottlingException"
INVALID_INPUT = "InvalidInputException"
INTERNAL = "InternalException"
UNKNOWN_OPERATION = "UnknownOperationException"
DESCRIBE_EVENT_BUS = "DescribeEventBus"
OPERATIONS = frozenset({"PutEvents", DESCRIBE_EVENT_BUS})
ACTIVE = "ACTIVE"
STATUS_OF = {
    ACCESS_DENIED: 403,
    NOT_FOUND: 404,
    THROTTLED: 429,
    INVALID_INPUT: 400,
    INTERNAL: 500,
    UNKNOWN_OPERATION: 404,
}


class EndpointError(PosdError):
    """A request the endpoint refuses as a whole: `code` is the model's error shape."""

    code = "eventbridge_v2_error"

    def __init__(self, error_code: str, message: str) -> None:
        self.error_code = error_code
        super().__init__(message)


# --- the model ---------------------------------------------------------------------------


def service_model() -> Any:
    """botocore's model of EventBridge v2: what the client sends is checked against it."""
    return model.service_model(V2_SERVICE_NAME)


# --- the bus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    event_id: str
    sequence_number: str
    expires_at: float


@dataclass
class _Group:
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_sequence: int = 1


@dataclass
class EndpointStats:
    requests: int = 0
    published: int = 0
    deduplicated: int = 0
    throttled: int = 0
    refused: int = 0  # requests refused as a whole (validation, size, unknown bus)
    failed_entries: int = 0
    largest_request_entries: int = 0  # of the requests that passed validation
    largest_request_bytes: int = 0  # as counted toward the 1 MB cap


class V2Bus:
    """One v2 event bus: deduplication, per-group order, forwarding to an SQS queue."""

    def __init__(
        self,
        name: str,
        sqs: Any,
        queue_url: str,
        dedup_window_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        bus_id = "".join(secrets.choice(BUS_ID_ALPHABET) for _ in range(BUS_ID_LENGTH))
        self.name = name
        self.arn = f"arn:aws:events:{ENDPOINT_REGION}:{ACCOUNT_ID}:event-busv2/{name}/{bus_id}"
        self._sqs = sqs
        self._queue_url = queue_url
        self._window = dedup_window_seconds
        self._clock = clock
        self._groups: dict[str, _Group] = {}
        self._accepted: dict[str, Accepted] = {}
        self._lock = threading.Lock()  # guards _groups and _accepted

    def group(self, group_id: str) -> _Group:
        with self._lock:
            return self._groups.setdefault(group_id, _Group())

    def seen(self, dedup_id: str, now: float) -> Accepted | None:
        with self._lock:
            accepted = self._accepted.get(dedup_id)
            if accepted is not None and accepted.expires_at <= now:
                del self._accepted[dedup_id]
                return None
            return accepted

    def remember(self, dedup_id: str, accepted: Accepted) -> None:
        with self._lock:
            self._accepted[dedup_id] = accepted

    def forward(self, events: list[dict[str, Any]]) -> set[int]:
        """Send envelopes to the queue in order; the indexes that failed."""
        failed: set[int] = set()
        for start in range(0, len(events), SQS_BATCH):
            chunk = events[start : start + SQS_BATCH]
            try:
                reply = self._sqs.send_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {"Id": str(start + i), "MessageBody": json.dumps(event)}
                        for i, event in enumerate(chunk)
                    ],
                )
            except Exception:  # noqa: BLE001 - the queue unreachable: every entry failed
                failed.update(range(start, start + len(chunk)))
                continue
            failed.update(int(item["Id"]) for item in reply.get("Failed", []))
        return failed


def envelope(entry: dict[str, Any], event_id: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The event as a bus rule delivers it to an SQS target (the v1 format)."""
    when = entry.get("Time")
    if isinstance(when, int | float):
        when = datetime.fromtimestamp(when, UTC)
    if not isinstance(when, datetime):
        when = datetime.now(UTC)
    return {
        "version": ENVELOPE_VERSION,
        "id": event_id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT_ID,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": ENDPOINT_REGION,
        "resources": list(entry.get("Resources", [])),
        "detail": detail,
    }


def request_entry_bytes(entry: dict[str, Any]) -> int:
    """What one entry counts toward the 1 MB cap (see the module docstring)."""
    size = sum(len(str(entry.get(name, "")).encode()) for name in ("Source", "DetailType"))
    size += len(str(entry.get("Detail", "")).encode())
    size += sum(len(str(resource).encode()) for resource in entry.get("Resources", []))
    size += TIME_FIELD_BYTES if "Time" in entry else 0
    metadata = entry.get("SystemMetadata", {})
    return size + system_metadata_bytes(
        str(metadata.get("DeduplicationId", "")), str(metadata.get("EventGroupId", ""))
    )


# --- the endpoint ------------------------------------------------------------------------


class EventBridgeV2Endpoint(BackgroundServer):
    """The server on a free loopback port, in a daemon thread; a context manager.

    `create_bus(name, sqs, queue_url)` makes a bus whose accepted events go to that queue and
    returns its ARN; `endpoint_url` is what to give boto3.
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        dedup_window_seconds: float = DEFAULT_DEDUP_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._model = service_model()
        self._input = self._model.operation_model("PutEvents").input_shape
        self._dedup_window = dedup_window_seconds
        self._clock = clock
        self._buses: dict[str, V2Bus] = {}
        self._lock = threading.Lock()
        self._throttle = 0
        self._entry_faults: dict[str, list[Any]] = {}  # dedup id -> [code, times left]
        self.stats = EndpointStats()
        server = LoopbackHTTPServer((host, port), _make_handler(self))
        self._serve_in_thread(server, "eventbridge-v2")

    def create_bus(self, name: str, sqs: Any, queue_url: str) -> str:
        bus = V2Bus(name, sqs, queue_url, self._dedup_window, self._clock)
        with self._lock:
            self._buses[bus.arn] = bus
        return bus.arn

    def throttle_next(self, requests: int) -> None:
        with self._lock:
            self._throttle = requests

    def fail_entry(self, dedup_id: str, code: str, times: int = 1) -> None:
        with self._lock:
            self._entry_faults[dedup_id] = [code, times]

    def describe_event_bus(self, request: Any) -> dict[str, Any]:
        """The read `posd doctor` checks the sink with: the bus's ARN, name and state."""
        arn = request.get("EventBusArn") if isinstance(request, dict) else None
        with self._lock:
            bus = self._buses.get(str(arn))
        if bus is None:
            raise EndpointError(NOT_FOUND, f"event bus {arn} does not exist")
        return {"EventBusArn": bus.arn, "Name": bus.name, "State": ACTIVE}

    # --- PutEvents --------------------------------------------------------------------

    def put_events(self, request: Any) -> dict[str, Any]:
        """Handle one decoded request; raises `EndpointError` for a whole-request error."""
        with self._lock:
            self.stats.requests += 1
            if self._throttle > 0:
                self._throttle -= 1
                self.stats.throttled += 1
                raise EndpointError(THROTTLED, "Rate exceeded")
        problems: list[str] = []
        validate(self._input, request, "PutEventsRequest", problems)
        if problems:
            self._refused()
            raise EndpointError(INVALID_INPUT, "; ".join(problems[:10]))
        size = sum(request_entry_bytes(entry) for entry in request["Entries"])
        with self._lock:
            stats = self.stats
            stats.largest_request_entries = max(
                stats.largest_request_entries, len(request["Entries"])
            )
            stats.largest_request_bytes = max(stats.largest_request_bytes, size)
        if size > V2_MAX_REQUEST_BYTES:
            self._refused()
            raise EndpointError(
                INVALID_INPUT, f"request entries total {size} bytes > {V2_MAX_REQUEST_BYTES}"
            )
        with self._lock:
            bus = self._buses.get(request["EventBusArn"])
        if bus is None:
            self._refused()
            raise EndpointError(NOT_FOUND, f"event bus {request['EventBusArn']} does not exist")
        entries: list[dict[str, Any]] = request["Entries"]
        results: list[dict[str, Any]] = [{} for _ in entries]
        groups = sorted({_group_of(entry) for entry in entries})
        with contextlib.ExitStack() as stack:
            # One request of a group at a time, groups locked in one order: no deadlock.
            for group_id in groups:
                stack.enter_context(bus.group(group_id).lock)
            self._publish(bus, entries, results)
        failed = sum(1 for result in results if "ErrorCode" in result)
        return {"FailedEntryCount": failed, "Entries": results}

    def _refused(self) -> None:
        with self._lock:
            self.stats.refused += 1

    def _injected(self, dedup_id: str) -> str | None:
        with self._lock:
            fault = self._entry_faults.get(dedup_id)
            if fault is None or fault[1] <= 0:
                return None
            fault[1] -= 1
            return str(fault[0])

    def _publish(
        self, bus: V2Bus, entries: list[dict[str, Any]], results: list[dict[str, Any]]
    ) -> None:
        """Under the groups' locks: dedupe, number, forward, remember, in entry order."""
        now = self._clock()
        batch: dict[str, int] = {}  # dedup id -> index of its first entry in this request
        to_forward: list[tuple[int, str, str, dict[str, Any]]] = []
        for index, entry in enumerate(entries):
            dedup_id = _dedup_of(entry)
            code = self._injected(dedup_id) if dedup_id else None
            if code is not None:
                results[index] = _error(code, f"injected {code}")
                continue
            earlier = bus.seen(dedup_id, now) if dedup_id else None
            if earlier is not None:
                results[index] = _success(earlier.event_id, earlier.sequence_number, DEDUPLICATED)
                continue
            if dedup_id in batch:
                results[index] = {"duplicate_of": batch[dedup_id]}
                continue
            try:
                detail = json.loads(entry.get("Detail", "{}"))
            except ValueError:
                detail = None
            if not isinstance(detail, dict):
                results[index] = _error(INVALID_INPUT, "Detail is not a JSON object")
                continue
            group = bus.group(_group_of(entry))
            sequence = str(group.next_sequence)
            group.next_sequence += 1
            event_id = str(uuid.uuid4())
            if dedup_id:
                batch[dedup_id] = index
            to_forward.append((index, event_id, sequence, envelope(entry, event_id, detail)))
        failed = bus.forward([event for *_, event in to_forward])
        for position, (index, event_id, sequence, _) in enumerate(to_forward):
            if position in failed:
                results[index] = _error(INTERNAL, "the event could not be published")
                continue
            results[index] = _success(event_id, sequence, PUBLISHED)
            dedup_id = _dedup_of(entries[index])
            if dedup_id:
                bus.remember(dedup_id, Accepted(event_id, sequence, now + self._dedup_window))
        for index, result in enumerate(results):
            if "duplicate_of" in result:  # the same id twice in one request: one event
                first = results[result["duplicate_of"]]
                results[index] = (
                    _success(first["EventId"], first["SequenceNumber"], DEDUPLICATED)
                    if "EventId" in first
                    else dict(first)
                )
        with self._lock:
            for result in results:
                if "ErrorCode" in result:
                    self.stats.failed_entries += 1
                elif result.get("SuccessCode") == DEDUPLICATED:
                    self.stats.deduplicated += 1
                else:
                    self.stats.published += 1


def route_v2_bus_to_queue(
    endpoint: EventBridgeV2Endpoint, sqs: Any, bus_name: str
) -> tuple[QueueRoute, str]:
    """A queue named after the bus and a v2 bus on `endpoint` delivering to it (what a v1
    bus rule targeting the queue does); the route and the bus ARN."""
    queue_url = sqs.create_queue(QueueName=bus_name)["QueueUrl"]
    return QueueRoute(bus_name, queue_url), endpoint.create_bus(bus_name, sqs, queue_url)


def _group_of(entry: dict[str, Any]) -> str:
    return str(entry.get("SystemMetadata", {}).get("EventGroupId", ""))


def _dedup_of(entry: dict[str, Any]) -> str:
    return str(entry.get("SystemMetadata", {}).get("DeduplicationId", ""))


def _success(event_id: str, sequence: str, code: str) -> dict[str, Any]:
    return {"EventId": event_id, "SequenceNumber": sequence, "SuccessCode": code}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ErrorCode": code, "ErrorMessage": message}


# --- HTTP --------------------------------------------------------------------------------


def error_body(code: str, message: str) -> bytes:
    """A smithy RPC v2 CBOR error: the shape id in `__type`, the text in `message`."""
    return cbor2.dumps({"__type": f"{ERROR_NAMESPACE}#{code}", "message": message})


def _make_handler(endpoint: EventBridgeV2Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(NoDelayQuietMixin, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", CBOR_CONTENT_TYPE)
            self.send_header("smithy-protocol", SMITHY_PROTOCOL)
            self.send_header("x-amzn-requestid", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)
                self.wfile.flush()

        def _fail(self, code: str, message: str) -> None:
            self._reply(STATUS_OF.get(code, 400), error_body(code, message))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            match = OPERATION_PATH.fullmatch(self.path)
            if match is None or match["operation"] not in OPERATIONS:
                self._fail(UNKNOWN_OPERATION, f"no operation at {self.path}")
                return
            if self.headers.get("smithy-protocol") != SMITHY_PROTOCOL:
                self._fail(INVALID_INPUT, f"the smithy-protocol header must be {SMITHY_PROTOCOL}")
                return
            if not self.headers.get("Authorization"):
                self._fail(ACCESS_DENIED, "the request is not signed")
                return
            try:
                request = cbor2.loads(raw)
            except (cbor2.CBORDecodeError, ValueError) as error:
                self._fail(INVALID_INPUT, f"the body is not CBOR: {error}")
                return
            try:
                if match["operation"] == DESCRIBE_EVENT_BUS:
                    answer = endpoint.describe_event_bus(request)
                else:
                    answer = endpoint.put_events(request)
            except EndpointError as error:
                self._fail(error.error_code, str(error))
                return
            self._reply(200, cbor2.dumps(answer))

    return Handler
