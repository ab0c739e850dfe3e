"""Filing a checkpoint: one statement per start, or an alarm.

A checkpoint comes here only once its signature is verified (`cloud.consumer`: signed by the
certificate of the terminal it names, issued by the trust anchor, valid, not revoked; anything
else is `forged_signature`, alarmed, not filed, not retried, and it touches no range and no
watermark).

The checkpoints table holds one checkpoint per journal and `first_seq`, written with a
conditional put whose outcome is always checked:

- nothing there: filed;
- the same checkpoint (same `event_id`: a retry after a crash): filed already, carry on;
- the same statement under another `event_id` (same range, count and chains): nothing new;
- another statement for the same start: `equivocation`. The terminal signed two different
  accounts of its journal; neither is trusted. The one filed first stays (marked
  `equivocated_by`), the other is not filed, both are in the alarm, and the journal's
  watermark is held back before that start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog

from cloud.alarms import EQUIVOCATION, Alarms
from cloud.checkpoints import RangeState
from cloud.continuity import EQUIVOCATED, Continuity
from cloud.errors import ConsumerError
from cloud.store import Store, open_mark
from wire.events import CheckpointEvent
from wire.signing import SignerIdentity

# What two checkpoints for one start must agree on to be the same statement.
STATEMENT = ("first_seq", "last_seq", "count", "chain_before", "chain")

log = structlog.get_logger("cloud.filing")


class Verdict(StrEnum):
    FILED = "filed"  # filed now, or by an earlier try of this same event
    KNOWN = "known"  # the same statement filed under another event_id: nothing new
    EQUIVOCATION = "equivocation"  # another statement for the same start: alarmed


@dataclass(frozen=True)
class Filing:
    verdict: Verdict
    item: Mapping[str, Any] | None = None  # the filed checkpoint (FILED), to settle


class CheckpointFiling:
    def __init__(
        self,
        store: Store,
        alarms: Alarms,
        continuity: Continuity,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._alarms = alarms
        self._continuity = continuity
        self._clock = clock

    def file(self, message: CheckpointEvent, signer: SignerIdentity) -> Filing:
        """File a checkpoint whose signature `signer` was verified."""
        item = self._item(message, signer.serial)
        tables = self._store.tables
        if not self._store.put_new(tables.checkpoints, "first_seq", item):
            key = {"journal_id": item["journal_id"], "first_seq": item["first_seq"]}
            existing = self._store.get(tables.checkpoints, key)
            if existing is None:  # removed since: never by this consumer
                raise ConsumerError("the checkpoint's item vanished while it was filed")
            if existing.get("event_id") != item["event_id"]:
                if all(existing.get(name) == item[name] for name in STATEMENT):
                    return Filing(Verdict.KNOWN)
                self._equivocation(existing, item)
                return Filing(Verdict.EQUIVOCATION)
            item = existing  # this event's own item: an earlier try filed it
        self._continuity.filed(item)
        return Filing(Verdict.FILED, item)

    def _item(self, message: CheckpointEvent, serial: int) -> dict[str, Any]:
        origin, now = message.origin, int(self._clock())
        return {
            "journal_id": origin.journal_id,
            "first_seq": message.first_seq,
            "last_seq": message.last_seq,
            "count": message.count,
            "chain_before": message.chain_before,
            "chain": message.chain,
            "store_id": origin.store_id,
            "terminal_id": origin.terminal_id,
            "event_id": origin.event_id,
            "created_at": message.created_at,
            "signed_by": f"{serial:x}",
            "received_at": now,
            "checked_at": now,
            "state": RangeState.OPEN.value,
            "open": open_mark(origin.journal_id),
        }

    def _equivocation(self, filed: Mapping[str, Any], other: Mapping[str, Any]) -> None:
        journal_id, first = str(filed["journal_id"]), int(filed["first_seq"])
        self._alarms.raise_once(
            f"{EQUIVOCATION}:{journal_id}:{first}:{other['event_id']}",
            EQUIVOCATION,
            {
                "journal_id": journal_id,
                "store_id": other["store_id"],
                "terminal_id": other["terminal_id"],
                "first_seq": first,
                "checkpoints": [_statement(filed), _statement(other)],
                "event_ids": [str(filed["event_id"]), str(other["event_id"])],
            },
        )
        if EQUIVOCATED not in filed:
            self._store.mark_checkpoint(journal_id, first, {EQUIVOCATED: str(other["event_id"])})
        self._continuity.hold_back(filed)


def _statement(item: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's statement as JSON can carry it (DynamoDB numbers are Decimals)."""
    return {
        "event_id": str(item["event_id"]),
        "first_seq": int(item["first_seq"]),
        "last_seq": int(item["last_seq"]),
        "count": int(item["count"]),
        "chain_before": str(item["chain_before"]),
        "chain": str(item["chain"]),
    }
