"""The published fair rate re-read while a lane drains, off the engine's driver thread.

As lanes finish their backlogs the cloud republishes a higher fair rate for the ones still
draining (`cloud/fair_rate.py`: quota x share / lanes active); a lane that read it only at
start and at reconnect kept its first share to the end, and mid-sized backlogs took up to
twice their fair time (bench/fleet.py --simulated --backlog-mix varied). The read itself may
hold its caller for seconds (an SSM endpoint that is slow to answer:
`sync.fair_rate.FAIR_RATE_READ_TIMEOUT_SECONDS`), so it runs in a thread of its own and the
driver only picks up what came back: sending never waits on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import structlog

log = structlog.get_logger("posd.sync")


class FairRateRefresh:
    """Starts a read of `read` every `period` seconds while asked to (`poll(draining=True)`),
    one at a time, and hands each value back once. Not thread-safe: the driver polls it."""

    def __init__(self, read: Callable[[], float | None], period: float, now: float) -> None:
        self._read = read
        self._period = period
        self._next_at = now + period  # the engine read it at start
        self._pool: ThreadPoolExecutor | None = None
        self._reading: Future[float | None] | None = None

    def poll(self, now: float, draining: bool) -> float | None:
        """A value read since the last poll (None: none came back, or none is known); starts
        the next read when one is due and the lane is draining."""
        value = self._collect()
        if draining and self._reading is None and now >= self._next_at:
            self._next_at = now + self._period
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="sync-fair-rate")
            self._reading = self._pool.submit(self._read)
        return value

    def read_at_once(self, now: float) -> None:
        """The engine read it itself now (at a reconnect): the next re-read is a period on."""
        self._next_at = max(self._next_at, now + self._period)

    def close(self) -> None:
        """Stop; a read under way is not waited for (its thread ends with its timeout)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._next_at = math.inf

    def _collect(self) -> float | None:
        reading = self._reading
        if reading is None or not reading.done():
            return None
        self._reading = None
        try:
            return reading.result()
        except Exception as error:  # noqa: BLE001 - a missing figure must not stop delivery
            log.warning("sync.fair_rate_unreadable", error=f"{type(error).__name__}: {error}")
            return None
