"""Capture goes before delivery: the outbox's writes wait while a payment is being captured.

A payment's append must not queue behind the sync engine's lease or settlement (each one a
transaction with an fsync, checking and building dozens of records under the journal lock),
nor share the GIL with it while the card is read. So the engine's journal calls wait while a
capture holds priority, and since the engine drives every request it sends from those calls,
delivery pauses as a whole. A hold gives priority for `window_s` at most: a payment waiting
seconds for a shopper's card must not stop delivery all that time, and the append takes a
fresh hold of its own, which covers the part that matters (measured: bench/capture_api.py).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class CapturePriority:
    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._changed = threading.Condition()
        self._holds: dict[int, float] = {}  # hold -> when it started
        self._ids = itertools.count()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Priority over delivery for the block (for `window_s` at most)."""
        with self._changed:
            token = next(self._ids)
            self._holds[token] = self._clock()
        try:
            yield
        finally:
            with self._changed:
                del self._holds[token]
                self._changed.notify_all()

    def yield_to_capture(self) -> float:
        """Wait while a hold younger than the window is on; return the seconds waited."""
        started = now = self._clock()
        with self._changed:
            while True:
                fresh = [since for since in self._holds.values() if now - since < self._window]
                if not fresh:
                    return now - started
                self._changed.wait(self._window - (now - max(fresh)))
                now = self._clock()
