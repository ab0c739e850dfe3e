"""AIMD concurrency window: how many PutEvents requests may be in flight.

Additive increase: +1 request per window's worth of clean responses (about +1 per round
trip). Multiplicative decrease on congestion (throttling, or answers coming after the read
timeout), at most once per round trip: congestion reported by a request submitted before the
last decrease is the same congestion event and is ignored, so a burst of throttled or
timed-out responses does not collapse the window to its floor.
"""

from __future__ import annotations

import math


class ConcurrencyWindow:
    def __init__(self, minimum: int, initial: int, maximum: int, decrease_factor: float) -> None:
        self._min = minimum
        self._max = maximum
        self._factor = decrease_factor
        self._value = float(initial)
        self._tickets = 0
        self._last_decrease_ticket = -1

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        return max(self._min, min(self._max, math.floor(self._value)))

    def ticket(self) -> int:
        """A number for a request about to be sent; pass it back with its outcome."""
        self._tickets += 1
        return self._tickets

    def on_success(self) -> None:
        self._value = min(float(self._max), self._value + 1.0 / max(self._value, 1.0))

    def on_congestion(self, ticket: int) -> None:
        if ticket <= self._last_decrease_ticket:
            return
        self._value = max(float(self._min), self._value * self._factor)
        self._last_decrease_ticket = self._tickets

    def reset_to_minimum(self) -> None:
        """After an outage: start small, like every other store reconnecting now."""
        self._value = float(self._min)
        self._last_decrease_ticket = self._tickets
