"""The EventBridge v2 transport: a `PutEventsClient` over boto3's `eventbridgev2` client.

The engine, the alarm lane and every other sender build v1-shaped entries and judge v1-shaped
results; this adapter is the only place that knows v2. It is what `ClientSource` returns with
`[sync] api = "v2"`, so the engine's policy (per-entry retry, quarantine, offline detection,
AIMD, misconfigured detection, read-timeout adaptation) is the same code for both APIs:

- request: the bus becomes `EventBusArn`; each entry keeps Source, DetailType, Detail, Time
  and Resources, drops `EventBusName` (not in the v2 model) and gains `SystemMetadata`:
  `DeduplicationId` = the `event_id` inside its Detail (records, alarms, checkpoints: every
  posd event carries one) and `EventGroupId` = the terminal (`sync.eventbridge.v2.event_group_id`);
- answer: per-entry results map onto v1's (`EventId`, or `ErrorCode` and `ErrorMessage`).
  A deduplicated `SuccessCode` is a success: the bus already holds the event, and the record
  is marked delivered. If such a result carried no `EventId` (the model does not promise
  one) the adapter names the event by its deduplication id rather than retrying forever;
- request-level errors arrive as botocore `ClientError`s with the model's codes (listed in
  `sync.eventbridge.retry`) and are sorted by `sync.eventbridge.retry` exactly like v1's.

Endpoint: an explicit `endpoint_url`, else boto3's own resolution (which reads
`AWS_ENDPOINT_URL_EVENTBRIDGEV2`, named after the service id "EventBridgeV2").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from sync.errors import EventDetailError, SettingsError
from sync.eventbridge.client import client_config
from sync.eventbridge.retry import V2_DEDUPLICATED_CODE
from sync.eventbridge.v2 import V2_SERVICE_NAME, event_group_id
from sync.settings import SyncSettings

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_events.type_defs import (
        PutEventsRequestEntryTypeDef,
        PutEventsResponseTypeDef,
        PutEventsResultEntryTypeDef,
    )

V1_ONLY_FIELDS = ("EventBusName", "TraceHeader")
DEDUPLICATED_EVENT_ID_PREFIX = "deduplicated:"


class V2PutEvents(Protocol):
    """What the adapter needs of boto3's `eventbridgev2` client (no stubs exist for it)."""

    def put_events(self, **kwargs: Any) -> dict[str, Any]: ...


def deduplication_id(entry: PutEventsRequestEntryTypeDef) -> str:
    """The `event_id` inside the entry's Detail: the record's identity, stable across every
    resend, which is what makes the bus's deduplication catch engine-level resends."""
    try:
        event_id = json.loads(entry.get("Detail", ""))["event_id"]
    except (ValueError, KeyError, TypeError) as error:
        raise EventDetailError(f"entry Detail has no event_id: {type(error).__name__}") from None
    if not isinstance(event_id, str) or not event_id:
        raise EventDetailError("entry Detail has an empty or non-string event_id")
    return event_id


def v2_entry(entry: PutEventsRequestEntryTypeDef, group_id: str) -> dict[str, Any]:
    """One v1-shaped entry as a v2 `PutEventsRequestEntry`."""
    converted: dict[str, Any] = {k: v for k, v in entry.items() if k not in V1_ONLY_FIELDS}
    converted["SystemMetadata"] = {
        "DeduplicationId": deduplication_id(entry),
        "EventGroupId": group_id,
    }
    return converted


def v1_result(result: dict[str, Any], dedup_id: str) -> PutEventsResultEntryTypeDef:
    """A v2 result entry as v1's (what `sync.eventbridge.results.judge` reads)."""
    mapped: dict[str, Any] = {}
    if result.get("ErrorCode"):
        mapped["ErrorCode"] = result["ErrorCode"]
        if result.get("ErrorMessage"):
            mapped["ErrorMessage"] = result["ErrorMessage"]
    elif result.get("EventId"):
        mapped["EventId"] = result["EventId"]
    elif result.get("SuccessCode") == V2_DEDUPLICATED_CODE:
        mapped["EventId"] = DEDUPLICATED_EVENT_ID_PREFIX + dedup_id
    return cast("PutEventsResultEntryTypeDef", mapped)


class EventBridgeV2Client:
    """A `PutEventsClient` (sync.eventbridge.transport) that sends through EventBridge v2."""

    def __init__(self, client: V2PutEvents, event_bus_arn: str, group_id: str) -> None:
        self._client = client
        self._bus_arn = event_bus_arn
        self._group_id = group_id

    def put_events(
        self, *, Entries: Sequence[PutEventsRequestEntryTypeDef]
    ) -> PutEventsResponseTypeDef:
        entries = [v2_entry(entry, self._group_id) for entry in Entries]
        response = self._client.put_events(EventBusArn=self._bus_arn, Entries=entries)
        results = response.get("Entries", [])
        if not isinstance(results, list):
            results = []  # put_batch reports the count mismatch
        mapped = [
            v1_result(result, entry["SystemMetadata"]["DeduplicationId"])
            if isinstance(result, dict)
            else result
            for result, entry in zip(results, entries, strict=False)
        ]
        return cast(
            "PutEventsResponseTypeDef",
            {
                "FailedEntryCount": response.get("FailedEntryCount", 0),
                "Entries": mapped + results[len(mapped) :],
                "ResponseMetadata": response.get("ResponseMetadata", {}),
            },
        )


def make_events_v2_client(
    settings: SyncSettings,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    read_timeout: float | None = None,
) -> V2PutEvents:
    """boto3's `eventbridgev2` client with the engine's timeouts and no SDK retries."""
    import boto3

    chosen = session or boto3.Session()
    client: V2PutEvents = chosen.client(  # type: ignore[call-overload]
        V2_SERVICE_NAME,
        region_name=region,
        endpoint_url=endpoint_url or None,
        config=client_config(settings, read_timeout),
    )
    return client


class EventsV2Clients:
    """The engine's `ClientSource` with api = "v2": one adapter per read timeout asked for,
    all from one session (see `sync.eventbridge.client.EventsClients`). Used from one thread."""

    def __init__(
        self,
        settings: SyncSettings,
        *,
        store_id: str,
        terminal_id: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: boto3.Session | None = None,
    ) -> None:
        import boto3

        if settings.event_bus_arn is None:
            raise SettingsError("event_bus_arn", "is required with api = 'v2'")
        self._settings = settings
        self._bus_arn = settings.event_bus_arn
        self._group_id = event_group_id(store_id, terminal_id)
        self._region = region
        self._endpoint_url = endpoint_url
        self._session = session or boto3.Session()
        self._clients: dict[float, EventBridgeV2Client] = {}

    def __call__(self, read_timeout: float) -> EventBridgeV2Client:
        client = self._clients.get(read_timeout)
        if client is None:
            client = EventBridgeV2Client(
                make_events_v2_client(
                    self._settings,
                    region=self._region,
                    endpoint_url=self._endpoint_url,
                    session=self._session,
                    read_timeout=read_timeout,
                ),
                self._bus_arn,
                self._group_id,
            )
            self._clients[read_timeout] = client
        return client
