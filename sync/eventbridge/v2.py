"""EventBridge v2 (`eventbridgev2`, API 2025-05-15): the facts the sync engine relies on.

Pure values and functions, no boto3: the settings validate against them, the event builder
counts sizes with them, the v2 client (`sync.eventbridge.client_v2`) and the local v2 endpoint
use them.
The contract is botocore's model (`botocore/data/eventbridgev2/2025-05-15/service-2.json`):
`PutEvents` takes an `EventBusArn` and 1-100 entries whose total size is at most 1 MB; each
entry carries `SystemMetadata.DeduplicationId` (1-128 characters) and
`SystemMetadata.EventGroupId` (1-128 characters, FIFO ordering within the group).

posd sets `DeduplicationId` to the record's `event_id` (the same id consumers dedupe on) and
`EventGroupId` to the terminal, so a lane's events keep their order on the bus.
"""

from __future__ import annotations

import re

from sync.errors import SettingsError

V2_SERVICE_NAME = "eventbridgev2"  # boto3's name for the service
API_V1 = "v1"
API_V2 = "v2"
APIS = (API_V1, API_V2)

# PutEventsRequestEntryList: max 100; the request as a whole: 1 MB (1,048,576 bytes).
V2_MAX_ENTRIES = 100
V2_MAX_REQUEST_BYTES = 1024 * 1024
# EventDeduplicationId and EventGroupId: 1-128 characters.
V2_MAX_ID_CHARS = 128
# The model's EventBusArn pattern (v2 buses are `event-busv2/<name>/<25-character id>`: the
# ARN cannot be derived from a bus name, so `[sync] event_bus_arn` is required with v2).
EVENT_BUS_ARN_PATTERN = (
    r"arn:aws(-[a-z0-9]+)*:events:[a-z][a-z0-9]*(-[a-z0-9]+)*:([0-9]{12}):"
    r"event-busv2\/[A-Za-z0-9][\.\-_A-Za-z0-9]{0,255}\/[a-z0-9]{25}"
)
EVENT_BUS_ARN_EXAMPLE = "arn:aws:events:eu-west-1:123456789012:event-busv2/NAME/ID25"
_EVENT_BUS_ARN = re.compile(EVENT_BUS_ARN_PATTERN)
GROUP_SEPARATOR = "/"


def valid_event_bus_arn(arn: str) -> bool:
    """Whether `arn` is a v2 event bus ARN as the model's pattern defines it."""
    return _EVENT_BUS_ARN.fullmatch(arn) is not None


def event_group_id(store_id: str, terminal_id: str) -> str:
    """The terminal's `EventGroupId`: `store/terminal` (both ids are letters, digits, `-`
    and `_`, so the separator cannot be ambiguous). Longer than the model allows is a
    settings error naming `terminal_id`."""
    group = f"{store_id}{GROUP_SEPARATOR}{terminal_id}"
    if len(group) > V2_MAX_ID_CHARS:
        raise SettingsError(
            "api",
            f"with api = 'v2' the event group '{group}' (store_id/terminal_id) must be at most "
            f"{V2_MAX_ID_CHARS} characters",
        )
    return group


def system_metadata_bytes(deduplication_id: str, group_id: str) -> int:
    """Bytes counted toward the 1 MB cap for an entry's `SystemMetadata` (an assumption: the
    model does not say how the service counts; counting the ids errs on the safe side)."""
    return len(deduplication_id.encode()) + len(group_id.encode())
