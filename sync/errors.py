"""The sync engine's own exceptions (`sync` never imports `posd`).

The daemon maps these onto its `PosdError` hierarchy at the boundary. Messages never carry
card data: the engine only ever sees ciphertext and clear, PCI-allowed metadata.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error the sync engine raises on purpose."""


class SettingsError(SyncError, ValueError):
    """A `SyncSettings` field is out of range; `field` names it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"sync.{field}: {problem}")


class ClockError(SyncError, ValueError):
    """`POSD_REHEARSAL_CLOCK` does not describe a rehearsal clock (sync/clock.py)."""


class EventBuildError(SyncError):
    """A record cannot be turned into an EventBridge entry (e.g. its time is unparsable)."""


class EventDetailError(EventBuildError, ValueError):
    """An entry's Detail has no `event_id` for EventBridge v2 to deduplicate on: a bug in the
    code that built it (every posd event carries one), found before anything is sent."""


class SideReadError(SyncError):
    """A read beside delivery failed (sync/aws_reads.py); `kind` names the failure (an AWS
    error code, `unreachable`, another botocore error class, or `malformed`) so that a change
    of failure is told apart from the same one again."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class WatermarkReadError(SideReadError):
    """The proven watermark could not be read (unreachable, refused, malformed)."""


class FairRateError(SideReadError):
    """The published fair rate could not be read (unreachable, refused, missing) or is not a
    rate (`malformed`)."""
