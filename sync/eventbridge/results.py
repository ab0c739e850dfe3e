"""Per-entry verdicts on an answered PutEvents request.

Partial failure comes back inside HTTP 200: each result either has an `EventId` (accepted)
or an `ErrorCode`. What each code means (retry, misconfigured or quarantine) is decided in
`sync.eventbridge.retry`; this module reads the results and sorts the records accordingly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sync.eventbridge.retry import NO_EVENT_ID, EntryDecision, entry_decision, entry_throttled
from sync.outbox import Delivered, OutboxRecord

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsResultEntryTypeDef


@dataclass
class Verdict:
    delivered: list[Delivered] = field(default_factory=list)
    retry: list[tuple[OutboxRecord, str]] = field(default_factory=list)
    quarantine: list[tuple[OutboxRecord, str]] = field(default_factory=list)
    misconfigured: list[tuple[OutboxRecord, str]] = field(default_factory=list)
    throttled: bool = False
    # The `retry` reasons of throttled entries: retried as paced by the rate limiter.
    throttled_reasons: set[str] = field(default_factory=set)


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
        decision = entry_decision(code)
        if decision is EntryDecision.RETRY:
            verdict.retry.append((record, text))
            if entry_throttled(code):
                verdict.throttled = True
                verdict.throttled_reasons.add(text)
        elif decision is EntryDecision.MISCONFIGURED:
            verdict.misconfigured.append((record, text))
        else:
            verdict.quarantine.append((record, text))
    return verdict
