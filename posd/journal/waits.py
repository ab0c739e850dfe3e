"""How long payments' appends waited for the journal's write lock before their transaction
began: behind another thread of this process, or behind a transaction of another process (the
delivery daemon's, which writes the same file). Capture must not wait on delivery (issue 24):
`GET /metrics` exposes these figures and `bench/capture_api.py` reads them."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

# Upper bounds (seconds) of the histogram's buckets: an uncontended BEGIN takes microseconds.
WAIT_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0)


@dataclass(frozen=True)
class WaitFigures:
    """Since the journal was opened: appends timed, seconds waited in all, the longest wait,
    and (upper bound, appends that waited at most that long) for each of `WAIT_BUCKETS_S`."""

    count: int
    total_s: float
    max_s: float
    buckets: tuple[tuple[float, int], ...]


class AppendWaits:
    def __init__(self) -> None:
        self._in_bucket = [0] * (len(WAIT_BUCKETS_S) + 1)  # the last: beyond every bound
        self._total_s = 0.0
        self._max_s = 0.0

    def observe(self, seconds: float) -> None:
        """Called under the journal's lock (`Database.lock`: one observer at a time), so it
        takes no lock of its own."""
        self._in_bucket[bisect.bisect_left(WAIT_BUCKETS_S, seconds)] += 1
        self._total_s += seconds
        if seconds > self._max_s:
            self._max_s = seconds

    def figures(self) -> WaitFigures:
        """Read without the journal's lock: a wait being recorded meanwhile may show in the
        count and not yet in the total (each only grows)."""
        counts = list(self._in_bucket)
        total, longest = self._total_s, self._max_s
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip(WAIT_BUCKETS_S, counts, strict=False):
            running += count
            cumulative.append((bound, running))
        return WaitFigures(sum(counts), total, longest, tuple(cumulative))
