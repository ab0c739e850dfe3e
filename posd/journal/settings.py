"""The journal's settings (`[journal]` in config): the one place their defaults live."""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB = 1024**2
MIN_MAX_BYTES = MIB
# A checkpoint per record would double the side lane's traffic for nothing; one per day
# leaves a gap undetected for too long. Outside these bounds is a typo, not a choice.
MAX_CHECKPOINT_EVERY_RECORDS = 1_000_000
MIN_CHECKPOINT_EVERY_SECONDS = 1.0
MAX_CHECKPOINT_EVERY_SECONDS = 86_400.0


@dataclass(frozen=True)
class JournalSettings:
    """How large the journal may grow, how much disk it must leave free, and how often it
    cuts a checkpoint (`posd.journal.checkpoints`).

    Reaching either size limit refuses new records (`journal_full`); captured records are never
    dropped to make room.
    """

    max_bytes: int = 2 * 1024**3
    min_free_bytes: int = 64 * MIB
    checkpoint_every_records: int = 100
    checkpoint_every_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_bytes < MIN_MAX_BYTES:
            raise ValueError("max_bytes: must be at least 1 MiB")
        if self.min_free_bytes < 0:
            raise ValueError("min_free_bytes: must be >= 0")
        if not 1 <= self.checkpoint_every_records <= MAX_CHECKPOINT_EVERY_RECORDS:
            raise ValueError(
                f"checkpoint_every_records: must be from 1 to {MAX_CHECKPOINT_EVERY_RECORDS}"
            )
        seconds = self.checkpoint_every_seconds
        if not (
            math.isfinite(seconds)
            and MIN_CHECKPOINT_EVERY_SECONDS <= seconds <= MAX_CHECKPOINT_EVERY_SECONDS
        ):
            raise ValueError(
                f"checkpoint_every_seconds: must be from {MIN_CHECKPOINT_EVERY_SECONDS:g} to "
                f"{MAX_CHECKPOINT_EVERY_SECONDS:g} (one day)"
            )
