"""The clock the lane's daemons read: the system's, or a rehearsal's that runs faster.

A rehearsal (bench/rehearse.py) runs the real daemons through days of simulated time in
minutes. Its clock is chosen once, at process start, from `POSD_REHEARSAL_CLOCK`
(`start:anchor:speed[:until]`): simulated time is `start + (monotonic() - anchor) * speed`
until it reaches `until`, then it goes on at the real pace (a drain is timed in real seconds).
CLOCK_MONOTONIC is one clock for every process on the machine, so both daemons, their
restarts and the rehearsal's driver read the same simulated time without talking to each
other. Waits on the rehearsal clock last `seconds / speed` real seconds, never less than
`MIN_REAL_WAIT_S` (a poll loop does not spin). Without the variable: the system clock.

It lives in `sync` because both daemons need it and `sync` never imports `posd`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sync.errors import ClockError

REHEARSAL_ENV = "POSD_REHEARSAL_CLOCK"
MIN_REAL_WAIT_S = 0.01
SYSTEM_NAME = "system"  # what `describe` says of the real clock (`posd status` shows others)
_FIELDS = ("start", "anchor", "speed", "until")


class Clock:
    """The system clock: wall time, monotonic time and waits, as they are."""

    rehearsal = False

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def real_seconds(self, seconds: float) -> float:
        """How long a wait of `seconds` on this clock lasts in real seconds."""
        return seconds

    def wait(self, event: threading.Event, seconds: float | None) -> bool:
        """`event.wait` for `seconds` of this clock (None: until set)."""
        return event.wait(None if seconds is None else self.real_seconds(seconds))

    def sleep(self, seconds: float) -> None:
        time.sleep(self.real_seconds(seconds))

    def describe(self) -> str:
        return SYSTEM_NAME


@dataclass(frozen=True)
class RehearsalClock(Clock):
    """Simulated time: `start` at real monotonic `anchor`, `speed` times faster until the
    simulated time `until`, real-paced after it."""

    start: float
    anchor: float
    speed: float
    until: float = math.inf

    rehearsal = True

    def __post_init__(self) -> None:
        if not (self.speed >= 1 and math.isfinite(self.speed)):
            raise ClockError(f"{REHEARSAL_ENV}: speed must be at least 1, got {self.speed}")
        if self.until < self.start:
            raise ClockError(f"{REHEARSAL_ENV}: until is before start")

    @property
    def _switch_at(self) -> float:
        """The real monotonic time at which the fast phase ends."""
        return self.anchor + (self.until - self.start) / self.speed

    def simulated(self, real_monotonic: float) -> float:
        switch = self._switch_at
        if real_monotonic <= switch:
            return self.start + (real_monotonic - self.anchor) * self.speed
        return self.until + (real_monotonic - switch)

    def time(self) -> float:
        return self.simulated(time.monotonic())

    def monotonic(self) -> float:
        return self.time() - self.start + self.anchor

    def fast(self) -> bool:
        return time.monotonic() < self._switch_at

    def real_seconds(self, seconds: float) -> float:
        if seconds <= 0 or not self.fast():
            return max(seconds, 0.0)
        return max(seconds / self.speed, MIN_REAL_WAIT_S)

    def encode(self) -> str:
        """The `POSD_REHEARSAL_CLOCK` value for this clock (the daemons' environment)."""
        return ":".join(repr(float(getattr(self, name))) for name in _FIELDS)

    def describe(self) -> str:
        return f"rehearsal x{self.speed:g}"


SYSTEM = Clock()


def parse(value: str) -> RehearsalClock:
    parts = value.split(":")
    if len(parts) not in (3, 4):
        raise ClockError(f"{REHEARSAL_ENV} must be start:anchor:speed[:until], got {value!r}")
    try:
        numbers = [float(part) for part in parts]
    except ValueError as error:
        raise ClockError(f"{REHEARSAL_ENV}: {error}") from error
    return RehearsalClock(*numbers)


def from_environment(environ: Mapping[str, str] = os.environ) -> Clock:
    """The rehearsal clock `POSD_REHEARSAL_CLOCK` names, or the system clock."""
    value = environ.get(REHEARSAL_ENV, "").strip()
    return parse(value) if value else SYSTEM
