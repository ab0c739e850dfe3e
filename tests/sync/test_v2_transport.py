"""EventBridge v2 through the real boto3 `eventbridgev2` client against the local v2 endpoint
over HTTP: batching limits, deduplication, errors sorted exactly like v1's, settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig
from posd.cli.main import main
from posd.config import parse_config
from posd.errors import ConfigError
from posd.journal import Journal
from posd.recorder import Recorder
from sync.errors import SettingsError
from sync.eventbridge.client_v2 import EventsV2Clients
from sync.eventbridge.retry import MISCONFIGURED, TRANSPORT, Failed, Throttled
from sync.eventbridge.transport import Answered, put_batch
from sync.eventbridge.v2 import EVENT_BUS_ARN_PATTERN, V2_MAX_REQUEST_BYTES
from sync.outbox import Alarm, Checkpoint
from sync.settings import SyncSettings
from sync.side_events import SideOrigin, side_entry
from tests.sync.conftest import (
    CLI_RECORDS,
    FAST,
    SOURCE,
    STORE_ID,
    TERMINAL_ID,
    EngineFactory,
    V2Route,
    emulator_session,
    event_ids,
    fill,
    receive_all,
    record_events,
    v2_settings,
)
from tests.sync.faultproxy import FaultProxy, http_error

BIG_BATCH = 250  # three requests at 100 entries: 100, 100, 50
# A 100-entry request makes the local endpoint forward ten SQS batches to moto: give it time
# (a late answer would be resent, and deduplicated: not what this test is about).
PATIENT = {"read_timeout_seconds": 5.0, "max_read_timeout_seconds": 5.0, "lease_seconds": 12.0}
SMALL_REQUEST_BYTES = 16 * 1024


def v2_client(route: V2Route, endpoint: str | None = None) -> Any:
    clients = EventsV2Clients(
        v2_settings(route),
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        endpoint_url=endpoint or route.endpoint.endpoint_url,
        session=emulator_session(),
    )
    return clients(FAST.read_timeout_seconds)


def entry(event_id: str, detail: dict[str, Any] | None = None) -> Any:
    body = {"event_id": event_id, **(detail or {})}
    return {"Source": SOURCE, "DetailType": "test", "Detail": json.dumps(body), "EventBusName": "x"}


def test_engine_batches_up_to_100_entries(
    recorder: Recorder, make_v2_engine: EngineFactory, v2_route: V2Route, sqs_client: Any
) -> None:
    ids = fill(recorder, BIG_BATCH)
    engine = make_v2_engine(
        v2_route.endpoint.endpoint_url, max_request_bytes=V2_MAX_REQUEST_BYTES, **PATIENT
    )

    report = engine.drain(timeout=60)

    assert report.completed and report.delivered == BIG_BATCH
    stats = v2_route.endpoint.stats
    assert stats.largest_request_entries == 100
    checkpoints = BIG_BATCH // recorder.journal.settings.checkpoint_every_records  # beside them
    assert stats.published == BIG_BATCH + checkpoints and stats.deduplicated == 0
    events = receive_all(sqs_client, v2_route.queue_url, BIG_BATCH + checkpoints)
    assert sorted(event_ids(record_events(events))) == sorted(ids)


def test_engine_keeps_requests_under_the_byte_cap(
    recorder: Recorder, make_v2_engine: EngineFactory, v2_route: V2Route
) -> None:
    fill(recorder, 40)
    engine = make_v2_engine(v2_route.endpoint.endpoint_url, max_request_bytes=SMALL_REQUEST_BYTES)

    assert engine.drain(timeout=30).delivered == 40
    # the endpoint counts the SystemMetadata ids too, as the engine's sizes do
    assert 0 < v2_route.endpoint.stats.largest_request_bytes <= SMALL_REQUEST_BYTES
    assert v2_route.endpoint.stats.largest_request_entries < 40


def test_a_request_over_1_mb_is_refused_as_a_whole(v2_route: V2Route) -> None:
    padding = "x" * (300 * 1024)
    entries = [entry(f"big-{i}", {"pad": padding}) for i in range(4)]

    result = put_batch(v2_client(v2_route), entries)

    assert isinstance(result, Failed) and result.kind == MISCONFIGURED
    assert "InvalidInputException" in result.error
    assert v2_route.endpoint.stats.published == 0


def test_the_same_event_id_twice_is_one_message(v2_route: V2Route, sqs_client: Any) -> None:
    client = v2_client(v2_route)
    first = put_batch(client, [entry("evt-1"), entry("evt-2")])
    again = put_batch(client, [entry("evt-2"), entry("evt-1"), entry("evt-1")])

    assert isinstance(first, Answered) and isinstance(again, Answered)
    ids = {r["EventId"] for r in first.results}
    # a duplicate is a success with the original EventId (the endpoint's stated assumption)
    assert [r["EventId"] for r in again.results] == [
        first.results[1]["EventId"],
        first.results[0]["EventId"],
        first.results[0]["EventId"],
    ]
    assert not any("ErrorCode" in r for r in again.results)
    events = receive_all(sqs_client, v2_route.queue_url, 2)
    assert sorted(event_ids(events)) == ["evt-1", "evt-2"]
    assert {e["id"] for e in events} == ids


def test_the_envelope_is_the_v1_rule_format(v2_route: V2Route, sqs_client: Any) -> None:
    put_batch(v2_client(v2_route), [entry("evt-env", {"kind": "payment.card"})])

    (event,) = receive_all(sqs_client, v2_route.queue_url, 1)

    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["source"] == SOURCE and event["detail-type"] == "test"
    assert event["detail"] == {"event_id": "evt-env", "kind": "payment.card"}


def test_side_events_go_through_v2_deduplicated_on_their_event_id(
    v2_route: V2Route, sqs_client: Any
) -> None:
    alarm = Alarm(7, "alarm-evt-1", "tampered", 12, "chain mismatch", "2026-01-02T03:04:05Z")
    checkpoint = Checkpoint(
        3, "checkpoint-evt-1", "journal-1", 1, 12, "0" * 64, "ab" * 32, "2026-01-02T03:04:06Z"
    )
    origin = SideOrigin(SOURCE, "unused-by-v2", STORE_ID, TERMINAL_ID, "journal-1")
    client = v2_client(v2_route)
    entries = [side_entry(alarm, origin), side_entry(checkpoint, origin)]

    results = [put_batch(client, entries) for _ in range(2)]

    assert all(isinstance(r, Answered) for r in results)
    events = receive_all(sqs_client, v2_route.queue_url, 2)
    by_type = {event["detail-type"]: event["detail"] for event in events}
    assert len(events) == 2 and by_type["posd.alarm"]["seq"] == 12
    assert (by_type["posd.checkpoint"]["first_seq"], by_type["posd.checkpoint"]["count"]) == (1, 12)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, "ThrottlingException", Throttled),
        (500, "InternalException", TRANSPORT),
        (409, "InvalidStateException", TRANSPORT),
        (403, "AccessDeniedException", MISCONFIGURED),
        (404, "ResourceNotFoundException", MISCONFIGURED),
        (400, "InvalidInputException", MISCONFIGURED),
    ],
)
def test_request_errors_sort_like_v1(
    v2_route: V2Route, status: int, code: str, expected: Any
) -> None:
    proxy = FaultProxy(v2_route.endpoint.endpoint_url)
    try:
        proxy.script.append(http_error(status, code))
        result = put_batch(v2_client(v2_route, proxy.url), [entry("evt-err")])
    finally:
        proxy.down()

    if expected is Throttled:
        assert isinstance(result, Throttled)
    else:
        assert isinstance(result, Failed) and result.kind == expected
    assert code in (result.error if not isinstance(result, Answered) else "")


def test_unknown_bus_is_misconfigured(v2_route: V2Route) -> None:
    settings = v2_settings(v2_route)
    other = settings.event_bus_arn
    assert other is not None
    clients = EventsV2Clients(
        v2_settings(v2_route, event_bus_arn=other[:-1] + ("a" if other[-1] != "a" else "b")),
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        endpoint_url=v2_route.endpoint.endpoint_url,
        session=emulator_session(),
    )
    result = put_batch(clients(1.0), [entry("evt-nobus")])
    assert isinstance(result, Failed) and result.kind == MISCONFIGURED
    assert "ResourceNotFoundException" in result.error


def test_entry_failures_retry_or_quarantine_like_v1(
    recorder: Recorder,
    journal: Journal,
    make_v2_engine: EngineFactory,
    v2_route: V2Route,
    sqs_client: Any,
) -> None:
    ids = fill(recorder, 6)
    v2_route.endpoint.fail_entry(ids[1], "InternalException", times=2)
    v2_route.endpoint.fail_entry(ids[2], "ThrottlingException", times=1)
    v2_route.endpoint.fail_entry(ids[3], "InvalidInputException", times=1000)
    v2_route.endpoint.throttle_next(2)
    engine = make_v2_engine(v2_route.endpoint.endpoint_url, **PATIENT)

    report = engine.drain(timeout=30)

    assert report.delivered == 5 and report.quarantined == 1 and report.pending == 0
    assert v2_route.endpoint.stats.throttled == 2
    summary = journal.summary()
    assert summary.quarantined == 1
    events = receive_all(sqs_client, v2_route.queue_url, 5)
    assert sorted(event_ids(events)) == sorted(ids[:3] + ids[4:])


def test_the_event_group_is_the_terminal(v2_route: V2Route) -> None:
    proxy = FaultProxy(v2_route.endpoint.endpoint_url)
    try:
        result = put_batch(v2_client(v2_route, proxy.url), [entry("evt-g")])
    finally:
        proxy.down()
    assert isinstance(result, Answered)
    assert proxy.sent_event_ids() == ["evt-g"]  # the proxy reads DeduplicationId


# --- settings ---------------------------------------------------------------------------


def test_model_pattern_is_the_one_we_check() -> None:
    from demo.localaws.eventbridge_v2 import service_model

    shape = service_model().operation_model("PutEvents").input_shape.members["EventBusArn"]
    assert shape.metadata["pattern"] == EVENT_BUS_ARN_PATTERN


def test_v2_needs_a_bus_arn() -> None:
    with pytest.raises(SettingsError, match="event_bus_arn"):
        SyncSettings(api="v2")
    with pytest.raises(SettingsError, match="event_bus_arn"):
        SyncSettings(api="v2", event_bus_arn="arn:aws:events:us-east-1:123456789012:event-bus/x")
    with pytest.raises(SettingsError, match="api"):
        SyncSettings(api="v3")


def test_entry_limits_follow_the_api(v2_route: V2Route) -> None:
    assert v2_settings(v2_route).max_entries_per_request == 100
    with pytest.raises(SettingsError, match="max_entries_per_request"):
        SyncSettings(max_entries_per_request=100)
    with pytest.raises(SettingsError, match="max_entries_per_request"):
        v2_settings(v2_route, max_entries_per_request=101)


def test_config_check_names_the_missing_arn(tmp_path: Any) -> None:
    document = {
        "terminal": {"store_id": "s1", "terminal_id": "t1", "mode": "development"},
        "keys": {"provider": "local", "local_key_file": "kek.b64"},
        "sync": {"api": "v2"},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(document, tmp_path / "posd.toml")
    assert caught.value.key == "sync.event_bus_arn"


def test_an_entry_without_event_id_is_refused_before_sending(v2_route: V2Route) -> None:
    nameless: Any = {"Source": SOURCE, "DetailType": "test", "Detail": json.dumps({"n": 1})}

    result = put_batch(v2_client(v2_route), [entry("evt-ok"), nameless])

    assert isinstance(result, Failed) and result.kind == MISCONFIGURED
    assert "EventDetailError" in result.error
    assert v2_route.endpoint.stats.requests == 0


# --- through the CLI: a terminal config with api = "v2" ----------------------------------


@pytest.fixture
def v2_config(config_file: Path, cli_config: DevConfig, v2_route: V2Route) -> Path:
    """The CLI tests' terminal config switched to EventBridge v2 on `v2_route`'s bus."""
    return cli_config.amended(
        sync={"api": "v2", "event_bus_arn": v2_route.bus_arn},
        aws={"events_endpoint_url": v2_route.endpoint.endpoint_url},
    ).write(config_file)


def test_sync_flush_delivers_through_v2(
    v2_config: Path, v2_route: V2Route, sqs_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sync", "flush", "--config", str(v2_config), "--json"])

    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    # the records and the checkpoint over all of them the flush cut
    assert v2_route.endpoint.stats.published == CLI_RECORDS + 1
    events = receive_all(sqs_client, v2_route.queue_url, CLI_RECORDS + 1)
    assert len(record_events(events)) == CLI_RECORDS


def test_doctor_reaches_the_v2_endpoint(
    v2_config: Path, v2_route: V2Route, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["doctor", "--config", str(v2_config), "--json"])

    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["events reach"]["status"] == "ok"
    assert checks["events reach"]["detail"].startswith(v2_route.endpoint.endpoint_url)
