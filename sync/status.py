"""Snapshots of the engine for status displays (API, CLI, systemd STATUS=)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sync.acknowledgement import Acknowledgement


@dataclass(frozen=True)
class SyncStatus:
    state: str  # "unknown", "online", "offline" or "misconfigured" (sync/pacing/link.py)
    offline_since: float | None
    last_success: float | None
    last_error: str | None
    pending: int
    quarantined: int
    oldest_pending_age_seconds: float | None
    in_flight: int
    in_flight_limit: int
    delivered_since_start: int
    quarantined_since_start: int
    # Adapted to a slow endpoint (see sync/pacing/timeouts.py): current values, and whether requests
    # are timing out now (read timeouts since the last answer).
    read_timeout_seconds: float
    entries_per_request: int
    slow_endpoint: bool
    tampered_since_start: int = 0  # records that failed their integrity check: an alarm
    # The cloud's proven watermark of this journal (sync/acknowledgement.py).
    acknowledged: Acknowledgement = field(default_factory=Acknowledgement)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DrainProgress:
    """Passed to a drain's progress callback after each round of responses."""

    delivered: int
    quarantined: int
    pending: int  # last known pending count (refreshed about once a second)


@dataclass(frozen=True)
class DrainReport:
    completed: bool  # True when nothing due or backing off was left pending
    delivered: int
    quarantined: int
    pending: int
    elapsed_seconds: float
    state: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
