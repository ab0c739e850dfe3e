"""The EventBridge client: botocore retries nothing, endpoints resolve like boto3's."""

from __future__ import annotations

from typing import Any

import pytest

from sync.eventbridge.client import (
    ALIAS_ENDPOINT_ENV,
    STANDARD_ENDPOINT_ENV,
    EventsClients,
    make_events_client,
    resolve_endpoint,
)
from sync.eventbridge.retry import READ_TIMEOUT, TRANSPORT, Failed, Throttled
from sync.eventbridge.transport import Answered, put_batch
from sync.settings import SyncSettings
from tests.sync.conftest import FAST, emulator_session
from tests.sync.faultproxy import DROP, FaultProxy, delay, http_error

ENTRY = {"Source": "posd.test", "DetailType": "t", "Detail": '{"event_id": "e1"}'}


@pytest.mark.parametrize(
    "fault",
    [
        DROP,
        http_error(500, "InternalFailure"),
        http_error(503, "ServiceUnavailable"),
        http_error(400, "ThrottlingException"),
    ],
)
def test_botocore_makes_exactly_one_attempt(proxy: FaultProxy, fault: object) -> None:
    proxy.script.append(fault)  # type: ignore[arg-type]
    client = make_events_client(FAST, endpoint_url=proxy.url, session=emulator_session())
    result = put_batch(client, [ENTRY])  # type: ignore[list-item]
    assert len(proxy.seen) == 1  # SDK retries (3 by default) would show up here
    expected = Throttled if fault == http_error(400, "ThrottlingException") else Failed
    assert isinstance(result, expected)
    assert put_batch(client, [ENTRY]).__class__ is Answered  # type: ignore[list-item]


def test_transport_failures_are_classified(proxy: FaultProxy) -> None:
    proxy.down()
    client = make_events_client(FAST, endpoint_url=proxy.url, session=emulator_session())
    result = put_batch(client, [ENTRY])  # type: ignore[list-item]
    assert isinstance(result, Failed)
    assert result.kind == TRANSPORT
    proxy.up()
    proxy.script.append(http_error(400, "AccessDeniedException"))
    result = put_batch(client, [ENTRY])  # type: ignore[list-item]
    assert isinstance(result, Failed)
    assert result.kind == "misconfigured"
    assert "AccessDeniedException" in result.error


def test_late_answers_are_read_timeouts_and_a_longer_timeout_gets_them(
    proxy: FaultProxy,
) -> None:
    clients = EventsClients(FAST, endpoint_url=proxy.url, session=emulator_session())
    proxy.script.extend([delay(0.3), delay(0.3)])
    late = put_batch(clients(0.1), [ENTRY])  # type: ignore[list-item]
    assert isinstance(late, Failed)
    assert late.kind == READ_TIMEOUT  # sent, not answered in time: not a link failure kind
    assert isinstance(put_batch(clients(1.0), [ENTRY]), Answered)  # type: ignore[list-item]
    assert clients(0.1) is clients(0.1)  # one client per timeout, kept
    config: Any = clients(0.1).meta.config
    assert (config.connect_timeout, config.read_timeout) == (FAST.connect_timeout_seconds, 0.1)


def test_timeouts_and_pool_follow_settings() -> None:
    settings = SyncSettings(
        connect_timeout_seconds=1.5,
        read_timeout_seconds=4.0,
        max_read_timeout_seconds=8.0,
        lease_seconds=20.0,
    )
    client = make_events_client(settings, region="eu-west-1", session=emulator_session())
    config: Any = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 4.0)
    assert config.retries["total_max_attempts"] == 1
    assert config.max_pool_connections >= settings.max_in_flight
    assert client.meta.region_name == "eu-west-1"


def test_endpoint_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STANDARD_ENDPOINT_ENV, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv(ALIAS_ENDPOINT_ENV, "http://127.0.0.1:9")
    client = make_events_client(FAST, region="us-east-1", session=emulator_session())
    assert client.meta.endpoint_url == "http://127.0.0.1:9"  # the alias works
    monkeypatch.setenv(STANDARD_ENDPOINT_ENV, "http://127.0.0.1:8")
    client = make_events_client(FAST, region="us-east-1", session=emulator_session())
    assert client.meta.endpoint_url == "http://127.0.0.1:8"  # boto3's own variable wins
    client = make_events_client(
        FAST, region="us-east-1", endpoint_url="http://127.0.0.1:7", session=emulator_session()
    )
    assert client.meta.endpoint_url == "http://127.0.0.1:7"  # explicit config wins
    assert resolve_endpoint(None, {}) is None
