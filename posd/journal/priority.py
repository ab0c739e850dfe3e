"""Capture goes before delivery: the outbox's writes wait while a payment is being captured.

A payment's append must not queue behind the sync engine's lease or settlement (each one a
transaction with an fsync, checking and building dozens of records under the journal lock),
nor share the GIL with it while the card is read. So the engine's journal calls wait while a
capture holds priority, and since the engine drives every request it sends from those calls,
delivery pauses as a whole. A hold gives priority for `window_s` at most: a payment waiting
seconds for a shopper's card must not stop delivery all that time, and the append takes a
fresh hold of its own, which covers the part that matters (measured: bench/capture_api.py).

Capture (`posd run`) and delivery (`posd sync run`) are two processes on one journal: a hold
is also published in a small shared file (`SharedHoldFlag`, mapped into both), and delivery's
writes wait on it as on a hold of their own process. A hold published between delivery's look
and its BEGIN IMMEDIATE is seen once the write lock is taken (`held_elsewhere`): the write
lets go of it before doing anything (`Database.write`). CLOCK_MONOTONIC is one clock for every
process of the machine, so a hold's start means the same on both sides.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from posd.errors import JournalError
from posd.journal.files import set_mode

# The flag file: one unsigned 64-bit slot, the CLOCK_MONOTONIC nanoseconds at which the
# newest hold in the capture process began, 0 while none is on.
FLAG_FORMAT = "=Q"
FLAG_BYTES = struct.calcsize(FLAG_FORMAT)
_FLAG = struct.Struct(FLAG_FORMAT)
NO_HOLD = 0
NS_PER_SECOND = 1_000_000_000
# How often delivery looks at the flag while a hold is on: a payment's append is over in about
# a millisecond, and delivery alone pays for the wake-ups.
FLAG_POLL_SECONDS = 0.0005


class SharedHoldFlag:
    """The capture process's holds, seen from every process that maps `path`."""

    def __init__(self, path: Path, mode: int) -> None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
        except OSError as error:
            raise JournalError(f"cannot open {path}: {error.strerror}") from error
        try:
            set_mode(fd, mode)  # the other daemon's user maps it too
            if os.fstat(fd).st_size < FLAG_BYTES:
                os.ftruncate(fd, FLAG_BYTES)
            self._map = mmap.mmap(fd, FLAG_BYTES)
        except OSError as error:
            raise JournalError(f"cannot map {path}: {error.strerror}") from error
        finally:
            os.close(fd)

    def publish(self, since_ns: int) -> None:
        """The newest hold began at `since_ns` (CLOCK_MONOTONIC), or `NO_HOLD`."""
        _FLAG.pack_into(self._map, 0, since_ns)

    def publisher(self) -> Callable[[int], None]:
        """`publish` as a C call (a partial of the struct's own `pack_into`)."""
        return functools.partial(_FLAG.pack_into, self._map, 0)

    def held_since(self) -> int:
        """The newest hold's start, `NO_HOLD` if none; read until two reads agree, so a
        write in progress is never taken for a value."""
        while True:
            first = struct.unpack_from(FLAG_FORMAT, self._map, 0)[0]
            if struct.unpack_from(FLAG_FORMAT, self._map, 0)[0] == first:
                return int(first)

    def holding(self, window_s: float, now_ns: int) -> bool:
        """A hold that began within the last `window_s` is on. A start in the future is no
        hold: the flag outlives a reboot (CLOCK_MONOTONIC starts again) and anyone in the
        group can write it, so a stall is never longer than the window."""
        since = self.held_since()
        return since != NO_HOLD and 0 <= now_ns - since < window_s * NS_PER_SECOND

    def wait_while_held(self, window_s: float) -> float:
        """Wait while a hold younger than `window_s` is on; the seconds waited."""
        started = now = time.monotonic_ns()
        while self.holding(window_s, now):
            time.sleep(FLAG_POLL_SECONDS)
            now = time.monotonic_ns()
        return (now - started) / NS_PER_SECOND

    def close(self) -> None:
        self._map.close()


class CapturePriority:
    def __init__(
        self,
        window_s: float,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        shared: SharedHoldFlag | None = None,
    ) -> None:
        """`shared`: the flag other processes see this one's holds in (and wait on theirs).
        `clock_ns`: CLOCK_MONOTONIC nanoseconds, the clock the flag is published on."""
        self._window_ns = int(window_s * NS_PER_SECOND)
        self._clock_ns = clock_ns
        self._shared = shared
        # A hold's start and end take the lock itself (a C context manager: every payment's
        # append takes one); waiting for a change takes the condition over it.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        # The starts of the holds on in this process, one per hold (equal starts are two).
        self._starts: list[int] = []
        # The flag's write, a C call (`SharedHoldFlag.publish` without its Python frame).
        self._publish = None if shared is None else shared.publisher()
        self._waiting = 0  # threads in `yield_to_capture`'s wait: a hold's end wakes them

    def hold(self) -> contextlib.AbstractContextManager[None]:
        """Priority over delivery for the block (for the window at most)."""
        return _Hold(self)

    def begin(self) -> int:
        """Start a hold; `end` it with what this returns. A payment's append takes its hold
        this way: two calls, not a context manager's four (`hold`)."""
        started = self._clock_ns()
        with self._lock:
            self._starts.append(started)
            if self._publish is not None:
                self._publish(started)  # the newest start: the highest, under the lock
        return started

    def end(self, started: int) -> None:
        """End the hold `begin` returned `started` for."""
        with self._lock:
            starts = self._starts
            starts.remove(started)
            if self._publish is not None:
                self._publish(max(starts) if starts else NO_HOLD)
            if self._waiting:
                self._changed.notify_all()

    def held_elsewhere(self) -> bool:
        """A hold younger than the window is on in another process (the shared flag says so
        and this process holds none: the flag's hold is then another's)."""
        if self._shared is None:
            return False
        # Under the lock `begin` publishes under: with none of ours on, what the flag holds
        # is another process's (a hold of ours begun in between would be taken for one).
        with self._changed:
            if self._starts:
                return False
            return self._shared.holding(self._window_ns / NS_PER_SECOND, self._clock_ns())

    def wait_elsewhere(self) -> float:
        """Wait while another process's hold is fresh; the seconds waited."""
        if self._shared is None:
            return 0.0
        return self._shared.wait_while_held(self._window_ns / NS_PER_SECOND)

    def yield_to_capture(self) -> float:
        """Wait while a hold younger than the window is on, in this process or (through the
        shared flag) in another; return the seconds waited.

        Delivery's own database (`outcomes.py`) shares no lock with the capture process, but
        the two share the machine's two cores: a drain running flat out while a payment is
        taken doubled the payment's median time (bench/capture_api.py)."""
        window = self._window_ns
        started = now = self._clock_ns()
        with self._changed:
            while True:
                fresh = [since for since in self._starts if now - since < window]
                if not fresh:
                    break
                self._waiting += 1
                try:
                    self._changed.wait((window - (now - max(fresh))) / NS_PER_SECOND)
                finally:
                    self._waiting -= 1
                now = self._clock_ns()
        waited = (now - started) / NS_PER_SECOND
        return waited + self.wait_elsewhere()

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()


class _Hold:
    """One hold (`CapturePriority.hold`), for callers that hold for a block."""

    __slots__ = ("_priority", "_started")

    def __init__(self, priority: CapturePriority) -> None:
        self._priority = priority
        self._started = NO_HOLD

    def __enter__(self) -> None:
        self._started = self._priority.begin()

    def __exit__(self, *exc_info: object) -> None:
        self._priority.end(self._started)
