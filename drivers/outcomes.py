"""The ordinary ends of a customer interaction, in one vocabulary for every device class.

Each result type carries its `Outcome` as a class attribute, so callers (the CLI, the daemon's
API) can report `result.outcome` without knowing the device class. `Cancelled` and `TimedOut`
are shared: a card read and a palm identification end the same way when the cashier cancels
or nobody presents anything. Faults are not here: they raise (`drivers.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class Outcome(StrEnum):
    CARD_READ = "card_read"
    CARD_REMOVED = "card_removed"
    CARD_UNREADABLE = "card_unreadable"
    MATCH = "match"
    NO_MATCH = "no_match"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Cancelled:
    """Cancelled by the host's `cancel()` or on the device (keypad, cancel key)."""

    outcome: ClassVar[Outcome] = Outcome.CANCELLED


@dataclass(frozen=True)
class TimedOut:
    """Nothing was presented before the timeout (the caller's or the device's own).

    A device that does not answer at all is a `DeviceTimeout` error instead: that is a fault,
    this is an ordinary outcome.
    """

    outcome: ClassVar[Outcome] = Outcome.TIMEOUT
