"""An upper bound of the undelivered backlog, for capture's offline limits, without a query.

The exact summary counts every pending record (a scan: ~0.1-0.2 s with 100,000 records),
too slow for every payment. Each summary the journal takes is kept here as a snapshot, with
the highest seq it saw, and every record this process appends afterwards is added to it. Only
delivery and quarantine shrink the backlog, so snapshot + own appends is never below the
truth: count and amounts can only be too high, the oldest pending record only too old. A
limit checked against the bound may refuse too early (the caller then asks the exact
summary), never accept too late. What makes records pending again (returning quarantined
records) drops the snapshot; another process doing so is seen by the next snapshot, taken at
least every `max_age_seconds` by whoever reads the summary (the capture daemon's main loop,
every second while a limit needs the backlog).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from posd.journal.rows import meta_amount
from sync.outbox import OutboxSummary


@dataclass(frozen=True)
class _Appended:
    seq: int
    currency: str | None
    amount: int
    captured_at: str


class BacklogBound:
    def __init__(self, max_age_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: OutboxSummary | None = None
        self._snapshot_seq = 0
        self._taken_at = 0.0
        self._since: list[_Appended] = []
        self._forgotten_at = float("-inf")

    def observed(self, summary: OutboxSummary, through_seq: int, taken_at: float) -> None:
        """An exact summary of every record up to `through_seq`, read at `taken_at` (of the
        clock given). Appends noted with a higher seq stay on top of it."""
        with self._lock:
            if taken_at < self._forgotten_at:
                return  # read before records became pending again
            if self._snapshot is not None and taken_at < self._taken_at:
                return  # an older read finishing late
            self._since = [item for item in self._since if item.seq > through_seq]
            self._snapshot, self._snapshot_seq, self._taken_at = summary, through_seq, taken_at

    def appended(self, seq: int, meta: Mapping[str, Any], captured_at: str) -> None:
        """A record this process committed (pending, until delivery says otherwise), with its
        checked metadata: its amount is read only when the bound keeps it."""
        with self._lock:
            if self._snapshot is not None and self._clock() - self._taken_at > self._max_age:
                self._forget()  # nobody reads summaries any more: stop keeping appends
            if self._snapshot is None or seq <= self._snapshot_seq:
                return  # already in the snapshot (or nothing to add it to)
            self._since.append(_Appended(seq, *meta_amount(meta), captured_at))

    def forget(self) -> None:
        """Records became pending again: the next bound waits for a new exact summary."""
        with self._lock:
            self._forget()
            self._forgotten_at = self._clock()

    def _forget(self) -> None:
        self._snapshot, self._snapshot_seq, self._since = None, 0, []

    def bound(self) -> OutboxSummary | None:
        """The backlog's upper bound, or None without a snapshot recent enough."""
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or self._clock() - self._taken_at > self._max_age:
                return None
            amounts = dict(snapshot.pending_amount_by_currency)
            for item in self._since:
                if item.currency is not None:
                    amounts[item.currency] = amounts.get(item.currency, 0) + item.amount
            first = self._since[0].captured_at if self._since else None
            return dataclasses.replace(
                snapshot,
                pending=snapshot.pending + len(self._since),
                pending_amount_by_currency=amounts,
                oldest_pending_captured_at=snapshot.oldest_pending_captured_at or first,
            )
