"""Checkpoint ranges: assess each open one against the records table, record the verdict.

A range complete and intact is closed (`complete`); complete with a chain that does not hold
is closed and alarmed (`broken`, `chain_mismatch`); incomplete, it stays open and, past the
grace period, raises one gap alarm (`gap`) and is still re-checked, so a late record closes
it. Open ranges are re-checked least recently checked first, a bounded number per call.

Each verdict is written only if the range is still open and was last checked when this
call read it: two invocations re-checking one range at once never write a stale `gap` over
a `complete`. A range that settles `complete` calls `on_range_proven` (once: only the call
whose verdict was written) and moves the journal's watermark (`cloud.continuity`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

from cloud.alarms import CHAIN_MISMATCH, GAP, Alarms
from cloud.checkpoints import Assessment, Link, Range, RangeState, assess
from cloud.continuity import EQUIVOCATED, Continuity
from cloud.store import Store

MAX_SEQS_IN_ALARM = 100
# A records table row's state: a record received and verified, or a seq the terminal reported.
RECEIVED = "received"
REPORTED_TAMPERED = "reported_tampered"

log = structlog.get_logger("cloud.ranges")

# (journal_id, first_seq, last_seq) of a signed checkpoint whose range just settled complete
RangeProven = Callable[[str, int, int], None]


def _no_op(journal_id: str, first_seq: int, last_seq: int) -> None:
    return None


class Ranges:
    def __init__(
        self,
        store: Store,
        alarms: Alarms,
        gap_grace_seconds: float,
        recheck_limit: int,
        clock: Callable[[], float],
        continuity: Continuity,
        on_range_proven: RangeProven = _no_op,
    ) -> None:
        self._store = store
        self._alarms = alarms
        self._grace = gap_grace_seconds
        self._limit = recheck_limit
        self._clock = clock
        self._continuity = continuity
        self.on_range_proven = on_range_proven

    def recheck_open(self) -> int:
        """Re-assess open checkpoints; returns how many were closed."""
        closed = 0
        for key in self._store.open_checkpoints(self._limit):
            item = self._store.get(self._store.tables.checkpoints, key)
            if item is not None and "open" in item and self.settle(item):
                closed += 1
        return closed

    def settle(self, item: Mapping[str, Any]) -> bool:
        """Assess one open checkpoint (`item` as read) and record the verdict; True if this
        call closed it."""
        journal_id, first, last = item["journal_id"], int(item["first_seq"]), int(item["last_seq"])
        links = {
            int(row["seq"]): link_of(row)
            for row in self._store.records_between(journal_id, first, last)
        }
        checkpoint = Range(first, last, int(item["count"]), item["chain_before"], item["chain"])
        verdict = assess(checkpoint, links)
        where = {
            "journal_id": journal_id,
            "first_seq": first,
            "last_seq": last,
            "store_id": item["store_id"],
            "terminal_id": item["terminal_id"],
        }
        if not verdict.complete:
            return self._incomplete(item, verdict, where)
        state = RangeState.COMPLETE if verdict.intact else RangeState.BROKEN
        if not verdict.intact:
            self._alarms.raise_once(
                f"{CHAIN_MISMATCH}:{journal_id}:{first}-{last}",
                CHAIN_MISMATCH,
                {**where, "first_bad_seq": verdict.first_bad_seq, "reason": verdict.problem},
            )
        closed = self._store.update_checkpoint(
            journal_id,
            first,
            {
                "state": state.value,
                "settled_at": int(self._clock()),
                "missing": [],
                "reported_tampered": verdict.reported_tampered,
                "unverified_links": verdict.unverified_links,
            },
            close=True,
            checked_at=int(item["checked_at"]),
        )
        if not closed:
            return False  # another invocation's verdict was written first
        log.info("cloud.checkpoint_settled", state=state.value, **where)
        if state is RangeState.COMPLETE:
            if "signed_by" in item and EQUIVOCATED not in item:
                self.on_range_proven(journal_id, first, last)
            self._continuity.advance(journal_id, str(item["store_id"]), str(item["terminal_id"]))
        return True

    def _incomplete(
        self, item: Mapping[str, Any], verdict: Assessment, where: Mapping[str, Any]
    ) -> bool:
        """Still open: raise the gap alarm once past the grace period, and move the range to
        the back of the re-check order (`checked_at`), so ranges that stay incomplete for
        good never starve the others of their re-checks."""
        now = self._clock()
        changes: dict[str, Any] = {"checked_at": int(now)}
        overdue = now - float(item["received_at"]) >= self._grace
        missing = verdict.missing
        if overdue:
            changes.update(state=RangeState.GAP.value, missing=missing[:MAX_SEQS_IN_ALARM])
        written = self._store.update_checkpoint(
            str(where["journal_id"]),
            int(where["first_seq"]),
            changes,
            close=False,
            checked_at=int(item["checked_at"]),
        )
        # Raised after the verdict is written (a stale verdict raises nothing), and again on
        # every re-check of a gap: `raise_once` makes that one alarm, and a crash between the
        # write and the alarm loses nothing.
        if written and overdue:
            self._alarms.raise_once(
                f"{GAP}:{where['journal_id']}:{where['first_seq']}-{where['last_seq']}",
                GAP,
                {**where, "missing_count": len(missing), "missing": missing[:MAX_SEQS_IN_ALARM]},
            )
        return False


def link_of(row: Mapping[str, Any]) -> Link:
    if row.get("state") == REPORTED_TAMPERED:
        return Link(reported_tampered=True)
    return Link(
        chain=str(row["chain"]),
        aad=bytes(row["aad"]),
        nonce=bytes(row["nonce"]),
        ciphertext=bytes(row["ciphertext"]),
    )
