"""Adapting to a slow endpoint: lengthen the read timeout, shrink the requests.

A read timeout means the request was sent and its answer did not come in time: EventBridge
may well have applied it, and resending with the same timeout repeats that forever, every
copy delivered and none ever marked (a duplicate storm). So each fresh read timeout doubles
the read timeout, up to `max_read_timeout_seconds`, and halves the entries per request, so
that a copy carries fewer events and a smaller request is answered sooner (the engine also
shrinks its concurrency window). Each answer grows the requests back by one entry; the read
timeout steps back down only after `RELAX_AFTER_ANSWERS` answers in a row that each came in
well within the shorter timeout.

Like the AIMD window's tickets, a timeout of a request sent before the last lengthening
belongs to the same slow spell and does not lengthen again (`generation`).
"""

from __future__ import annotations

from dataclasses import dataclass

READ_TIMEOUT_GROWTH = 2.0
ENTRIES_DIVISOR = 2
RELAX_AFTER_ANSWERS = 20
# An answer counts toward stepping down when it took at most this fraction of the shorter
# timeout: room for the endpoint's latency to vary without timing out again.
RELAX_LATENCY_FRACTION = 0.5


@dataclass(frozen=True)
class TimeoutSnapshot:
    read_timeout_seconds: float
    entries_per_request: int
    timeouts_in_streak: int  # read timeouts since the last answer


class TimeoutAdapter:
    """Read timeout and request size of the next requests, from how the last ones ended."""

    def __init__(self, read_timeout: float, max_read_timeout: float, max_entries: int) -> None:
        """Bounds as `SyncSettings` checks them: 0 < read_timeout <= max_read_timeout."""
        self._base = read_timeout
        self._cap = max_read_timeout
        self._max_entries = max_entries
        self._read_timeout = read_timeout
        self._entries = max_entries
        self._generation = 0
        self._streak = 0
        self._calm_answers = 0

    @property
    def read_timeout(self) -> float:
        return self._read_timeout

    @property
    def entries_per_request(self) -> int:
        return self._entries

    @property
    def generation(self) -> int:
        """Stamp a request with this when sending it; pass it back if it times out."""
        return self._generation

    def on_read_timeout(self, generation: int) -> bool:
        """Note a read timeout; True when it starts a streak (the first since an answer)."""
        self._streak += 1
        self._calm_answers = 0
        if generation == self._generation:
            self._read_timeout = min(self._cap, self._read_timeout * READ_TIMEOUT_GROWTH)
            self._entries = max(1, self._entries // ENTRIES_DIVISOR)
            self._generation += 1
        return self._streak == 1

    def on_answer(self, latency: float) -> int:
        """Note an answer that took `latency` seconds; returns the length of the timeout
        streak it ends (0 when there was none)."""
        ended, self._streak = self._streak, 0
        self._entries = min(self._max_entries, self._entries + 1)
        shorter = max(self._base, self._read_timeout / READ_TIMEOUT_GROWTH)
        if self._read_timeout > self._base and latency <= shorter * RELAX_LATENCY_FRACTION:
            self._calm_answers += 1
            if self._calm_answers >= RELAX_AFTER_ANSWERS:
                self._read_timeout = shorter
                self._calm_answers = 0
        else:
            self._calm_answers = 0
        return ended

    def snapshot(self) -> TimeoutSnapshot:
        return TimeoutSnapshot(self._read_timeout, self._entries, self._streak)
