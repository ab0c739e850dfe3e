"""Do a journal's checkpoints follow each other? The proven watermark, and what it leaves out.

Per journal the consumer keeps a contiguous proven watermark (`cloud.watermarks`): every seq
up to `proven_seq` is covered by signed checkpoints, each complete and intact, each starting
where the one before ended (`first_seq` = previous `last_seq` + 1) and chaining from it
(`chain_before` = previous `chain`). A journal's watermark starts at seq 0 and the genesis
chain. Its first range may start later only with the genesis chain: a journal made by a
reset (`posd journal reset`) goes on after the highest seq ever issued, from genesis. (A
journal of a posd older than checkpoints, whose first range starts after records it had
already erased, never gets a watermark: its seqs before that range stay uncovered.)

What breaks it, each alarmed once (`Alarms.raise_once`, ids stable per cause):

- `chain_discontinuity`: a range's `chain_before` is not the `chain` of the range (or
  watermark) it follows. The watermark stops before it.
- `uncovered_seqs`: seqs no checkpoint covers, still uncovered after the grace period: between
  the watermark and a later range (a checkpoint lost), or records received beyond every
  checkpoint (named by the first uncovered seq; the alarm gives the highest seen).
- `checkpoints_stopped`: a journal with records beyond its last checkpoint, and no checkpoint
  received for `checkpoint_silence_seconds` since (the terminal sends one every 300 s of
  records by default). A lane with no records at all is a closed store, not an alarm.
- `journal_replaced`: the lane started a new journal while the old one had seqs beyond its
  watermark (an unproven tail), once the grace period has passed; the old journal is then
  no longer watched.

Equivocations (two checkpoints for one start) are found when a checkpoint is filed
(`cloud.filing`); this module holds the watermark back before them (`hold_back`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from cloud.alarms import (
    CHAIN_DISCONTINUITY,
    CHECKPOINTS_STOPPED,
    JOURNAL_REPLACED,
    UNCOVERED_SEQS,
    Alarms,
)
from cloud.checkpoints import RangeState
from cloud.store import Store
from cloud.watermarks import (
    CHECKED_AT,
    EQUIVOCATION_SEQ,
    GENESIS_HEX,
    LAST_CHECKPOINT_AT,
    REPLACED_AT,
    REPLACED_BY,
    WATCH,
    Watermarks,
)
from wire.watermark import JOURNAL_ID, LANE_ID, PROVEN_CHAIN, PROVEN_SEQ, lane_id

MAX_ADVANCE_STEPS = 100  # ranges one call walks the watermark over; the next call goes on
RANGES_PER_CHECK = 100  # ranges beyond the watermark one check reads
EQUIVOCATED = "equivocated_by"  # on a checkpoint item: the event_id of the other statement

log = structlog.get_logger("cloud.continuity")


@dataclass(frozen=True)
class ContinuitySettings:
    gap_grace_seconds: float
    checkpoint_silence_seconds: float
    check_every_seconds: float  # at most this often per process, the watched journals


class Continuity:
    def __init__(
        self,
        store: Store,
        alarms: Alarms,
        settings: ContinuitySettings,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._marks = Watermarks(store)
        self._alarms = alarms
        self._settings = settings
        self._clock = clock
        self._checked_at: float | None = None

    # -- a checkpoint filed -----------------------------------------------------------------

    def filed(self, item: Mapping[str, Any]) -> None:
        """A checkpoint was filed (again, on a retry: all of this is idempotent): watch its
        journal, note when, compare it with its neighbours, see whether it replaces another
        journal of the lane, and move the watermark."""
        journal_id, store_id, terminal_id = _where(item)
        lane = lane_id(store_id, terminal_id)
        now = self._clock()
        if self._marks.create(lane, journal_id, store_id, terminal_id, now):
            self._replacements(lane, journal_id, int(item["first_seq"]), now)
        made_at = _epoch(item.get("created_at"))
        received_at = float(item["received_at"])
        last_seq = int(item["last_seq"])
        self._marks.note_checkpoint(lane, journal_id, received_at, made_at, last_seq)
        self._neighbours(item)
        self.advance(journal_id, store_id, terminal_id)

    def watch_journal(self, journal_id: str, store_id: str, terminal_id: str, seq: int) -> None:
        """A record of a journal (seq `seq`) was received: watch the journal from now on, so a
        lane that sends records and never a checkpoint is alarmed too. Idempotent; one write
        per call, so callers call it once per journal and process (a set of those seen)."""
        lane = lane_id(store_id, terminal_id)
        now = self._clock()
        if self._marks.create(lane, journal_id, store_id, terminal_id, now):
            self._replacements(lane, journal_id, seq, now)

    def _neighbours(self, item: Mapping[str, Any]) -> None:
        """A discontinuity with the range just before or just after, whatever the watermark."""
        journal_id, first, last = item["journal_id"], int(item["first_seq"]), int(item["last_seq"])
        if first == 1 and item["chain_before"] != GENESIS_HEX:
            self._discontinuity(item, 0, GENESIS_HEX)
        before = self._store.checkpoints_from(journal_id, first - 1, 1, forward=False)
        adjacent = bool(before) and int(before[0]["last_seq"]) == first - 1
        if adjacent and before[0]["chain"] != item["chain_before"]:
            self._discontinuity(item, first - 1, str(before[0]["chain"]), before[0])
        after = self._store.get(
            self._store.tables.checkpoints, {"journal_id": journal_id, "first_seq": last + 1}
        )
        if after is not None and after["chain_before"] != item["chain"]:
            self._discontinuity(after, last, str(item["chain"]), item)

    def _discontinuity(
        self,
        item: Mapping[str, Any],
        previous_seq: int,
        previous_chain: str,
        previous: Mapping[str, Any] | None = None,
    ) -> None:
        journal_id, store_id, terminal_id = _where(item)
        self._alarms.raise_once(
            f"{CHAIN_DISCONTINUITY}:{journal_id}:{item['first_seq']}",
            CHAIN_DISCONTINUITY,
            {
                "journal_id": journal_id,
                "store_id": store_id,
                "terminal_id": terminal_id,
                "first_seq": int(item["first_seq"]),
                "last_seq": int(item["last_seq"]),
                "chain_before": item["chain_before"],
                "event_id": str(item.get("event_id", "")),
                "previous_last_seq": previous_seq,
                "previous_chain": previous_chain,
                "previous_first_seq": None if previous is None else int(previous["first_seq"]),
                "previous_event_id": None if previous is None else str(previous["event_id"]),
            },
        )

    def _replacements(self, lane: str, journal_id: str, first_seq: int, now: float) -> None:
        """A journal new to the lane: the other watched journal whose seqs end before it
        starts is replaced by it (or it is the older one, arriving late)."""
        for other in self._marks.lane(lane):
            other_id = str(other[JOURNAL_ID])
            if other_id == journal_id or WATCH not in other or REPLACED_BY in other:
                continue
            if self._highest_seq(other_id) < first_seq:
                old, new = other_id, journal_id
            else:
                old, new = journal_id, other_id
            self._marks.update(lane, old, {REPLACED_BY: new, REPLACED_AT: int(now)})
            log.info("cloud.journal_replaced", lane=lane, old=old, new=new)

    # -- the watermark ------------------------------------------------------------------------

    def advance(self, journal_id: str, store_id: str, terminal_id: str) -> int:
        """Move the journal's watermark over each following range that is complete, chains
        on and is not equivocated; returns the proven seq."""
        lane = lane_id(store_id, terminal_id)
        mark = self._marks.get(lane, journal_id)
        if mark is None:
            return 0
        seq, chain = int(mark[PROVEN_SEQ]), str(mark[PROVEN_CHAIN])
        for _ in range(MAX_ADVANCE_STEPS):
            following = self._following(journal_id, seq)
            if following is None or EQUIVOCATED in following:
                break
            if EQUIVOCATION_SEQ in mark and int(following["first_seq"]) >= int(
                mark[EQUIVOCATION_SEQ]
            ):
                break
            if following["chain_before"] != chain:
                self._discontinuity(following, seq, chain)
                break
            if following.get("state") != RangeState.COMPLETE.value:
                break
            proven = (int(following["last_seq"]), str(following["chain"]))
            if not self._marks.advance(lane, journal_id, (seq, chain), proven, self._clock()):
                break  # another invocation moved it, and goes on from there
            seq, chain = proven
            log.info("cloud.watermark_advanced", journal_id=journal_id, proven_seq=seq)
        return seq

    def _following(self, journal_id: str, seq: int) -> dict[str, Any] | None:
        """The range starting right after `seq`; after seq 0 also a reset journal's first
        range (a later start, from the genesis chain)."""
        following = self._store.get(
            self._store.tables.checkpoints, {"journal_id": journal_id, "first_seq": seq + 1}
        )
        if following is None and seq == 0:
            first = self._store.checkpoints_from(journal_id, 1, 1)
            if first and first[0]["chain_before"] == GENESIS_HEX:
                return first[0]
        return following

    def hold_back(self, item: Mapping[str, Any]) -> None:
        """An equivocation at `item`'s first seq: the watermark goes back to the range before
        (its chain is `item`'s `chain_before`, which matched when it was filed) and stays."""
        journal_id, store_id, terminal_id = _where(item)
        first = int(item["first_seq"])
        self._marks.hold_back(
            lane_id(store_id, terminal_id),
            journal_id,
            first - 1,
            str(item["chain_before"]),
            first,
            self._clock(),
        )

    # -- the watched journals -----------------------------------------------------------------

    def check(self, limit: int) -> int:
        """Check up to `limit` watched journals (least recently checked first), at most every
        `check_every_seconds` per process; returns how many were checked."""
        now = self._clock()
        if (
            self._checked_at is not None
            and now - self._checked_at < self._settings.check_every_seconds
        ):
            return 0
        self._checked_at = now
        checked = 0
        for key in self._marks.watched(limit):
            mark = self._marks.get(str(key[LANE_ID]), str(key[JOURNAL_ID]))
            if mark is not None and WATCH in mark:
                self._check(mark, now)
                checked += 1
        return checked

    def _check(self, mark: Mapping[str, Any], now: float) -> None:
        lane, journal_id = str(mark[LANE_ID]), str(mark[JOURNAL_ID])
        if REPLACED_BY in mark:
            if now - float(mark[REPLACED_AT]) < self._settings.gap_grace_seconds:
                self._marks.update(lane, journal_id, {CHECKED_AT: int(now)})
                return
            self._replaced(mark)
            self._marks.update(lane, journal_id, {CHECKED_AT: int(now)}, unwatch=True)
            return
        covered = self._uncovered_between(mark, now)
        if covered is not None:
            self._uncovered_tail(mark, covered, now)
        self._marks.update(lane, journal_id, {CHECKED_AT: int(now)})

    def _uncovered_between(self, mark: Mapping[str, Any], now: float) -> int | None:
        """Alarm the holes between the watermark and the ranges beyond it; returns the last
        seq the ranges cover (None if there are more ranges than one check reads)."""
        journal_id, proven = str(mark[JOURNAL_ID]), int(mark[PROVEN_SEQ])
        ranges = self._store.checkpoints_from(journal_id, proven + 1, RANGES_PER_CHECK)
        expected = proven + 1
        if proven == 0 and ranges and ranges[0]["chain_before"] == GENESIS_HEX:
            expected = int(ranges[0]["first_seq"])  # a reset journal's start
        for item in ranges:
            first = int(item["first_seq"])
            overdue = now - float(item["received_at"]) >= self._settings.gap_grace_seconds
            if first > expected and overdue:
                self._uncovered(mark, expected, first - 1, f"{expected}-{first - 1}")
            expected = max(expected, int(item["last_seq"]) + 1)
        return None if len(ranges) == RANGES_PER_CHECK else expected - 1

    def _uncovered_tail(self, mark: Mapping[str, Any], covered: int, now: float) -> None:
        """Records received beyond every checkpoint: uncovered past the grace period, and the
        checkpoints stopped past the silence period."""
        journal_id = str(mark[JOURNAL_ID])
        highest = self._store.record_from(journal_id, 2**63 - 1, forward=False)
        if highest is None or int(highest["seq"]) <= covered:
            return  # nothing beyond the checkpoints (a closed store is quiet, not an alarm)
        first = self._store.record_from(journal_id, covered + 1, forward=True)
        arrived = self._received_at(first) if first is not None else now
        if now - arrived >= self._settings.gap_grace_seconds:
            self._uncovered(mark, covered + 1, int(highest["seq"]), f"{covered + 1}+")
        last_checkpoint_at = int(mark.get(LAST_CHECKPOINT_AT, 0))
        since = max(arrived, float(last_checkpoint_at))
        if now - since >= self._settings.checkpoint_silence_seconds:
            self._alarms.raise_once(
                f"{CHECKPOINTS_STOPPED}:{journal_id}:{covered}",
                CHECKPOINTS_STOPPED,
                {
                    **_fields(mark),
                    "last_checkpointed_seq": covered,
                    "last_checkpoint_at": last_checkpoint_at or None,
                    "first_seq": covered + 1,
                    "highest_seq": int(highest["seq"]),
                    "silent_seconds": int(now - since),
                },
            )

    def _received_at(self, record: Mapping[str, Any]) -> float:
        marker = self._store.get(self._store.tables.events, {"event_id": record["event_id"]})
        return float(marker["received_at"]) if marker is not None else self._clock()

    def _uncovered(self, mark: Mapping[str, Any], first: int, last: int, cause: str) -> None:
        self._alarms.raise_once(
            f"{UNCOVERED_SEQS}:{mark[JOURNAL_ID]}:{cause}",
            UNCOVERED_SEQS,
            {
                **_fields(mark),
                "first_seq": first,
                "last_seq": last,
                "proven_seq": int(mark[PROVEN_SEQ]),
            },
        )

    def _replaced(self, mark: Mapping[str, Any]) -> None:
        journal_id, proven = str(mark[JOURNAL_ID]), int(mark[PROVEN_SEQ])
        highest = self._highest_seq(journal_id)
        if highest <= proven:
            return  # the old journal is proven to its end: nothing lost
        self._alarms.raise_once(
            f"{JOURNAL_REPLACED}:{journal_id}",
            JOURNAL_REPLACED,
            {
                **_fields(mark),
                "replaced_by": str(mark[REPLACED_BY]),
                "proven_seq": proven,
                "proven_chain": str(mark[PROVEN_CHAIN]),
                "highest_seq": highest,
                "first_seq": proven + 1,
                "last_seq": highest,
            },
        )

    def _highest_seq(self, journal_id: str) -> int:
        """The highest seq seen of a journal: its last record's or its last checkpoint's."""
        record = self._store.record_from(journal_id, 2**63 - 1, forward=False)
        ranges = self._store.checkpoints_from(journal_id, 2**63 - 1, 1, forward=False)
        return max(int(record["seq"]) if record else 0, int(ranges[0]["last_seq"]) if ranges else 0)


def _epoch(text: object) -> float | None:
    """A checkpoint's `created_at` (RFC 3339, the terminal's clock) in epoch seconds; None
    when it is not a time (it was verified as signed, not as well formed)."""
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def _where(item: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(item["journal_id"]), str(item["store_id"]), str(item["terminal_id"])


def _fields(mark: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "journal_id": str(mark[JOURNAL_ID]),
        "store_id": str(mark["store_id"]),
        "terminal_id": str(mark["terminal_id"]),
    }
