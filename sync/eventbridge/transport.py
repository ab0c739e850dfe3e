"""One PutEvents call, with every way it can end sorted into a small set of outcomes.

The call and its outcomes live here; which failure is which outcome is decided in
`sync.eventbridge.retry`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sync.eventbridge.retry import (
    Failed,
    Throttled,
    classify_request_error,
    malformed_answer,
    unusable_answer,
)

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import (
        PutEventsRequestEntryTypeDef,
        PutEventsResponseTypeDef,
        PutEventsResultEntryTypeDef,
    )


class PutEventsClient(Protocol):
    """The one call the engine makes (a boto3 EventBridge client satisfies it, and so does
    `sync.eventbridge.client_v2.EventBridgeV2Client` for EventBridge v2)."""

    def put_events(
        self, *, Entries: Sequence[PutEventsRequestEntryTypeDef]
    ) -> PutEventsResponseTypeDef: ...


# The client to send the next request with, given the read timeout (seconds) it must use.
ClientSource = Callable[[float], PutEventsClient]


@dataclass(frozen=True)
class Answered:
    """EventBridge answered HTTP 200: one result per entry, in request order."""

    results: Sequence[PutEventsResultEntryTypeDef]


SendResult = Answered | Throttled | Failed


def put_batch(
    client: PutEventsClient, entries: Sequence[PutEventsRequestEntryTypeDef]
) -> SendResult:
    """Send one request; never raises for anything the network or service can do."""
    try:
        response = client.put_events(Entries=entries)
    except Exception as error:
        failure = classify_request_error(error)
        if failure is None:
            raise
        return failure
    results = response.get("Entries", [])
    if len(results) != len(entries):
        return unusable_answer(f"PutEvents answered {len(results)} results for {len(entries)}")
    if not all(isinstance(result, dict) for result in results):
        # `null` in the list reaches us as None: judging it would kill the engine's thread
        return malformed_answer("a result that is not an object")
    return Answered(results)
