"""Per-entry verdicts on an answered PutEvents request.

Partial failure comes back inside HTTP 200: each result either has an `EventId` (accepted)
or an `ErrorCode`. Only `InternalFailure` and `ThrottlingException` (and v2's
`InternalException`, sync/client_v2.py) are worth retrying. Codes
about the terminal's configuration (AccessDeniedException, NotAuthorizedForSourceException, a
missing bus) would refuse every record alike: those records stay pending and the engine
reports `misconfigured`. Any other code (InvalidArgument, MalformedDetail, codes AWS adds
later...) is about the record itself: it is quarantined with the code and message for an
operator to look at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sync.outbox import Delivered, OutboxRecord

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsResultEntryTypeDef

THROTTLED_ENTRY_CODE = "ThrottlingException"
RETRYABLE_ENTRY_CODES = frozenset({"InternalFailure", "InternalException", THROTTLED_ENTRY_CODE})
NO_EVENT_ID = "NoEventId"
MISCONFIGURED_ENTRY_CODES = frozenset(
    {"AccessDeniedException", "NotAuthorizedForSourceException", "ResourceNotFoundException"}
)


@dataclass
class Verdict:
    delivered: list[Delivered] = field(default_factory=list)
    retry: list[tuple[OutboxRecord, str]] = field(default_factory=list)
    quarantine: list[tuple[OutboxRecord, str]] = field(default_factory=list)
    misconfigured: list[tuple[OutboxRecord, str]] = field(default_factory=list)
    throttled: bool = False


def _error_text(code: str, message: str) -> str:
    return f"{code}: {message}" if message else code


def judge(
    records: Sequence[OutboxRecord], results: Sequence[PutEventsResultEntryTypeDef]
) -> Verdict:
    """Sort the records of one answered request by what happened to their entry."""
    if len(records) != len(results):
        raise ValueError(f"{len(results)} results for {len(records)} entries")
    verdict = Verdict()
    for record, result in zip(records, results, strict=True):
        event_id = result.get("EventId")
        code = result.get("ErrorCode")
        if event_id and not code:
            verdict.delivered.append(Delivered(record.seq, event_id))
            continue
        text = _error_text(code or NO_EVENT_ID, result.get("ErrorMessage", ""))
        if code is None or code in RETRYABLE_ENTRY_CODES:
            verdict.retry.append((record, text))
            verdict.throttled = verdict.throttled or code == THROTTLED_ENTRY_CODE
        elif code in MISCONFIGURED_ENTRY_CODES:
            verdict.misconfigured.append((record, text))
        else:
            verdict.quarantine.append((record, text))
    return verdict
