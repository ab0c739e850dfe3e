"""Whatever EventBridge answers, the engine's send path has a specific verdict, never a
traceback: a real boto3 client posts to a loopback server that answers with hypothesis-made
PutEvents responses (malformed JSON, wrong entry counts, unknown error codes, wrong types,
error statuses). Each record ends delivered (only with an EventId of its own), retried or
quarantined, exactly one of them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo.localaws.serving import NoDelayQuietMixin
from sync.eventbridge.client import EventsClients
from sync.eventbridge.results import judge
from sync.eventbridge.retry import Failed, Throttled
from sync.eventbridge.transport import Answered, put_batch
from tests.sync.conftest import FAST, emulator_session

ENTRIES = 3
KNOWN_CODES = ["InternalFailure", "ThrottlingException", "AccessDeniedException", "InvalidArgument"]
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


class Canned:
    """The next answer the server gives: status and raw body."""

    status = 200
    body = b"{}"


def _server(canned: Canned) -> ThreadingHTTPServer:
    class Handler(NoDelayQuietMixin, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(canned.status)
            self.send_header("Content-Type", JSON_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def answering() -> Iterator[tuple[Canned, Any]]:
    canned = Canned()
    server = _server(canned)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    clients = EventsClients(FAST, endpoint_url=url, session=emulator_session())
    yield canned, clients(FAST.read_timeout_seconds)
    server.shutdown()
    server.server_close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
result_entries = st.one_of(
    st.fixed_dictionaries({"EventId": st.text(min_size=1, max_size=12)}),
    st.fixed_dictionaries(
        {"ErrorCode": st.sampled_from(KNOWN_CODES) | st.text(max_size=20)},
        optional={"ErrorMessage": st.text(max_size=20)},
    ),
    st.fixed_dictionaries({"EventId": st.text(max_size=12), "ErrorCode": st.text(max_size=12)}),
    st.just({}),
    json_values,
)
well_formed = st.builds(
    lambda entries, failed: json.dumps({"FailedEntryCount": failed, "Entries": entries}),
    st.lists(result_entries, min_size=0, max_size=ENTRIES + 2),
    st.integers(-1, ENTRIES + 2),
)
answers = st.one_of(
    st.tuples(st.just(200), well_formed),
    st.tuples(st.just(200), st.text(max_size=40)),  # malformed JSON, or not an object
    st.tuples(st.just(200), json_values.map(json.dumps)),
    st.tuples(
        st.sampled_from([400, 403, 429, 500, 502, 503]),
        st.builds(
            lambda code, message: json.dumps({"__type": code, "message": message}),
            st.sampled_from(["ThrottlingException", "InternalException", "AccessDenied"])
            | st.text(max_size=12),
            st.text(max_size=12),
        ),
    ),
)


@dataclass(frozen=True)
class Record:
    seq: int


def entries_of(count: int) -> list[Any]:
    return [
        {"Source": "posd.test", "DetailType": "payment", "Detail": json.dumps({"n": i})}
        for i in range(count)
    ]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answer=answers)
def test_every_answer_gets_a_specific_verdict(
    answering: tuple[Canned, Any], answer: tuple[int, str]
) -> None:
    canned, client = answering
    canned.status, text = answer
    canned.body = text.encode()
    result = put_batch(client, entries_of(ENTRIES))
    assert isinstance(result, Answered | Throttled | Failed)
    if not isinstance(result, Answered):
        assert result.error  # says what happened
        return
    records: list[Any] = [Record(seq) for seq in range(ENTRIES)]
    verdict = judge(records, result.results)
    settled = (
        [d.seq for d in verdict.delivered]
        + [r.seq for r, _ in verdict.retry]
        + [r.seq for r, _ in verdict.quarantine]
        + [r.seq for r, _ in verdict.misconfigured]
    )
    assert sorted(settled) == list(range(ENTRIES))  # each exactly once
    for delivered in verdict.delivered:
        entry = result.results[delivered.seq]
        assert entry.get("EventId") and not entry.get("ErrorCode")
    for _, reason in verdict.retry + verdict.quarantine + verdict.misconfigured:
        assert reason
