"""The cloud's acknowledgement of this journal: how far it has proven it, kept current.

The consumer publishes each journal's proven watermark (wire/watermark.py); with `[sync]
acknowledged_retention` the engine erases a delivered record only at or below it. This module
reads it at most every `watermark_poll_seconds` and keeps the highest value seen: the read is
eventually consistent, and a stale answer lower than an earlier one never moves it back.

Reads run on a thread of their own; the engine's driver only starts one and looks at what
the last one found. When DynamoDB answers, a read is a few milliseconds; when the endpoint
behind the store's VPN does not, a read waits out its connect and read timeouts (13 s with
the defaults), and on the driver that would stop every lease, send and settle as long.
A failed read (unreachable, AccessDenied, no item yet) never stops delivery or capture: the
last watermark stays, a warning is logged when the failure changes (not per read), and status
shows the error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from sync.errors import WatermarkReadError
from sync.watermarks import WatermarkTable

NOT_PROVEN = "not_proven"  # the kind of "no item yet"
UNEXPECTED = "unexpected"

log = structlog.get_logger("posd.sync")


@dataclass(frozen=True)
class Acknowledgement:
    """What status shows. `journal_id`: the journal last asked about; `proven_seq`: its
    proven watermark (None until one is read); `checked_at`: when the last read ended;
    `error`: why it failed (None when it succeeded). All None before the first read."""

    journal_id: str | None = None
    proven_seq: int | None = None
    checked_at: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class _Outcome:
    journal_id: str
    seq: int | None
    kind: str | None  # of the failure; None: read
    error: str | None


class Acknowledgements:
    """The proven watermark of the engine's journal, polled from `table` (None: nothing is
    ever proven). `poll` is for the driver thread; the rest is safe from any thread."""

    def __init__(
        self,
        table: WatermarkTable | None,
        poll_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = Acknowledgement()
        self._failure: str | None = None  # kind of the current failure, to log changes only
        self._reading: threading.Thread | None = None
        self._next_read_at = 0.0

    def poll(self, journal_id: str, now: float) -> None:
        """Start a read of `journal_id`'s watermark if one is due and none is running."""
        if self._table is None or now < self._next_read_at:
            return
        if self._reading is not None and self._reading.is_alive():
            return
        self._next_read_at = now + self._poll_seconds
        self._reading = threading.Thread(
            target=self._read, args=(self._table, journal_id), name="sync-watermark", daemon=True
        )
        self._reading.start()

    def proven_seq(self, journal_id: str) -> int | None:
        """The highest seq of `journal_id` known to be proven; None when none is (or the
        watermark known is another journal's)."""
        with self._lock:
            state = self._state
        return state.proven_seq if state.journal_id == journal_id else None

    def snapshot(self) -> Acknowledgement:
        with self._lock:
            return self._state

    def wait_idle(self, timeout: float) -> bool:
        """Wait (up to `timeout`) for a read in progress to end; True if none is left."""
        reading = self._reading
        if reading is not None:
            reading.join(timeout)
            return not reading.is_alive()
        return True

    # --- the reading thread -------------------------------------------------------------

    def _read(self, table: WatermarkTable, journal_id: str) -> None:
        try:
            seq = table.proven_seq(journal_id)
        except WatermarkReadError as error:
            outcome = _Outcome(journal_id, None, error.kind, str(error))
        except Exception as error:  # noqa: BLE001 - a bug in the client stack must not end
            # the polling: it is reported like any failed read.
            outcome = _Outcome(journal_id, None, UNEXPECTED, f"{type(error).__name__}: {error}")
        else:
            if seq is None:
                problem = f"no proven watermark yet for journal {journal_id} in {table.table}"
                outcome = _Outcome(journal_id, None, NOT_PROVEN, problem)
            else:
                outcome = _Outcome(journal_id, seq, None, None)
        self._record(outcome)

    def _record(self, outcome: _Outcome) -> None:
        with self._lock:
            before = self._state
            # Another journal (this one was reset): the old watermark says nothing about it.
            known = before.proven_seq if before.journal_id == outcome.journal_id else None
            proven = known
            if outcome.seq is not None and (known is None or outcome.seq > known):
                proven = outcome.seq
            self._state = Acknowledgement(outcome.journal_id, proven, self._clock(), outcome.error)
            changed = outcome.kind != self._failure
            self._failure = outcome.kind
        if outcome.seq is not None and known is not None and outcome.seq < known:
            log.debug("sync.watermark_stale", read=outcome.seq, kept=known)
        if changed and outcome.kind is not None:
            log.warning(
                "sync.watermark_unavailable",
                journal_id=outcome.journal_id,
                error=outcome.error,
                proven_seq=proven,
            )
        elif changed:
            log.info("sync.watermark_available", journal_id=outcome.journal_id, proven_seq=proven)
        if proven is not None and proven != known:
            log.info("sync.watermark_advanced", journal_id=outcome.journal_id, proven_seq=proven)
