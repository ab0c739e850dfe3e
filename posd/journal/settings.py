"""The journal's settings (`[journal]` in config): the one place their defaults live."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024**2
MIN_MAX_BYTES = MIB


@dataclass(frozen=True)
class JournalSettings:
    """How large the journal may grow, and how much disk it must leave free.

    Reaching either limit refuses new records (`journal_full`); captured records are never
    dropped to make room.
    """

    max_bytes: int = 2 * 1024**3
    min_free_bytes: int = 64 * MIB

    def __post_init__(self) -> None:
        if self.max_bytes < MIN_MAX_BYTES:
            raise ValueError("max_bytes: must be at least 1 MiB")
        if self.min_free_bytes < 0:
            raise ValueError("min_free_bytes: must be >= 0")
