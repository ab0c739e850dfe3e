"""The fair rate a chain publishes in SSM Parameter Store: the value's format (a property test
of the parser), then reads through real boto3 from moto's SSM over HTTP: a published value, a
missing parameter, a bad value, a refused read, an endpoint that refuses connections or never
answers. The callable never raises and never holds the engine longer than its timeouts."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from demo.localaws.emulator import LocalAws
from sync.aws_reads import UNREACHABLE
from sync.errors import FairRateError
from sync.fair_rate import (
    FAIR_RATE_CONNECT_TIMEOUT_SECONDS,
    FAIR_RATE_READ_TIMEOUT_SECONDS,
    MALFORMED,
    MAX_FAIR_RATE,
    FairRateParameter,
    PublishedFairRate,
    make_fair_rate_client,
    parse_fair_rate,
)
from tests.sync.conftest import emulator_session

REFRESH = 60.0
MAX_AGE = 900.0
FAST_ANSWER_SECONDS = 0.5  # a refused connection is answered in far less
SLACK_SECONDS = 1.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ssm(local_aws: LocalAws) -> Any:
    return local_aws.client("ssm")


@pytest.fixture
def name() -> str:
    return f"/posd/test-{uuid.uuid4().hex[:8]}/fair-rate"


def parameter_at(endpoint: str, name: str) -> FairRateParameter:
    """The lane's reader, with the lane's own client (short timeouts, no SDK retries)."""
    client = make_fair_rate_client(endpoint_url=endpoint, session=emulator_session())
    return FairRateParameter(client, name)


def published(endpoint: str, name: str, clock: FakeClock) -> PublishedFairRate:
    return PublishedFairRate(
        parameter_at(endpoint, name), refresh_seconds=REFRESH, max_age_seconds=MAX_AGE, clock=clock
    )


def put(ssm: Any, name: str, value: str) -> None:
    ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


# --- the value's format ------------------------------------------------------------------


@given(st.floats(min_value=0.001, max_value=MAX_FAIR_RATE))
def test_a_plain_decimal_reads_back_as_the_rate(rate: float) -> None:
    assert parse_fair_rate(repr(rate)) == rate
    assert parse_fair_rate(f" {rate:.3f}\n") == pytest.approx(rate, abs=0.001)


@given(st.text())
def test_any_text_is_a_sane_rate_or_malformed_never_another_error(text: str) -> None:
    outcome = _parsed(text)
    assert outcome == MALFORMED or (isinstance(outcome, float) and 0 < outcome <= MAX_FAIR_RATE)


def _parsed(text: str) -> float | str:
    """The rate, or the kind of the refusal."""
    try:
        return parse_fair_rate(text)
    except FairRateError as error:
        return error.kind


@pytest.mark.parametrize(
    "text",
    ["", "0", "0.0", "-1", "nan", "inf", "1e3", "1_000", "0x10", "1,5", "5 entries/s", "10001"],
)
def test_what_is_not_a_plain_positive_decimal_under_the_cap_is_malformed(text: str) -> None:
    with pytest.raises(FairRateError) as refused:
        parse_fair_rate(text)
    assert refused.value.kind == MALFORMED


# --- reads from moto's SSM over HTTP --------------------------------------------------------


def test_the_published_rate_is_read(aws_endpoint: str, ssm: Any, name: str) -> None:
    put(ssm, name, "2.5")
    assert published(aws_endpoint, name, FakeClock())() == 2.5


def test_the_rate_is_cached_for_the_refresh_interval(
    aws_endpoint: str, ssm: Any, name: str
) -> None:
    clock = FakeClock()
    rate = published(aws_endpoint, name, clock)
    put(ssm, name, "2.5")
    assert rate() == 2.5
    put(ssm, name, "4")
    clock.now += REFRESH - 1
    assert rate() == 2.5
    clock.now += 1
    assert rate() == 4.0


def test_a_missing_parameter_is_none_logged_once(aws_endpoint: str, name: str) -> None:
    clock = FakeClock()
    rate = published(aws_endpoint, name, clock)
    with structlog.testing.capture_logs() as logs:
        assert rate() is None
        clock.now += REFRESH
        assert rate() is None
    warnings = [line for line in logs if line["event"] == "sync.fair_rate_unavailable"]
    assert len(warnings) == 1
    assert warnings[0]["kind"] == "ParameterNotFound"
    assert name in warnings[0]["parameter"]


def test_a_bad_value_is_none_logged_once(aws_endpoint: str, ssm: Any, name: str) -> None:
    put(ssm, name, "fast")
    clock = FakeClock()
    rate = published(aws_endpoint, name, clock)
    with structlog.testing.capture_logs() as logs:
        assert rate() is None
        clock.now += REFRESH
        assert rate() is None
    warnings = [line for line in logs if line["event"] == "sync.fair_rate_unavailable"]
    assert [line["kind"] for line in warnings] == [MALFORMED]
    assert "fast" in warnings[0]["error"]


def test_the_last_good_rate_stays_while_fresh_enough(
    aws_endpoint: str, ssm: Any, name: str
) -> None:
    clock = FakeClock()
    rate = published(aws_endpoint, name, clock)
    put(ssm, name, "3")
    assert rate() == 3.0
    put(ssm, name, "three")
    clock.now += REFRESH
    with structlog.testing.capture_logs() as logs:
        assert rate() == 3.0  # the last good value, read REFRESH ago
        clock.now += MAX_AGE
        assert rate() is None  # too old to trust
        put(ssm, name, "3.5")
        clock.now += REFRESH
        assert rate() == 3.5
    events = [line["event"] for line in logs]
    assert events == ["sync.fair_rate_unavailable", "sync.fair_rate_available"]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_endpoint_is_answered_fast(closed_port: int, name: str) -> None:
    rate = published(f"http://127.0.0.1:{closed_port}", name, FakeClock())
    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        assert rate() is None
    assert time.monotonic() - started < FAST_ANSWER_SECONDS
    assert [line["kind"] for line in logs] == [UNREACHABLE]


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections (the kernel's backlog) and never answers: a stalled endpoint."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_silent_endpoint_holds_the_caller_one_read_timeout_at_most(
    silent_endpoint: str, name: str
) -> None:
    rate = published(silent_endpoint, name, FakeClock())
    started = time.monotonic()
    assert rate() is None
    bound = FAIR_RATE_CONNECT_TIMEOUT_SECONDS + FAIR_RATE_READ_TIMEOUT_SECONDS + SLACK_SECONDS
    assert time.monotonic() - started < bound


class _Refusing(BaseHTTPRequestHandler):
    """SSM's JSON protocol answering every request AccessDeniedException, as IAM does when
    the lane's role lacks ssm:GetParameter."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps(
            {"__type": "AccessDeniedException", "message": "not authorized: ssm:GetParameter"}
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_refused_read_is_none_named_by_its_code(refusing_endpoint: str, name: str) -> None:
    rate = published(refusing_endpoint, name, FakeClock())
    with structlog.testing.capture_logs() as logs:
        assert rate() is None
    assert [line["kind"] for line in logs] == ["AccessDeniedException"]
    with pytest.raises(FairRateError) as refused:
        parameter_at(refusing_endpoint, name).read()
    assert refused.value.kind == "AccessDeniedException"
