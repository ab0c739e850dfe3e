"""The outbox's timestamp format: RFC 3339 in UTC, written and read in one place.

`OutboxRecord.captured_at` is produced by the journal (posd) and read by the engine (sync) and
by status displays; they all use these functions, so every age shown is computed one way.
"""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(ts: float) -> str:
    """UTC RFC 3339 with microseconds and a Z, e.g. 2026-11-25T12:00:00.123456Z."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp (`Z` or an offset) as an aware datetime.

    Raises ValueError for anything else, naive times included.
    """
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp has no time zone: {text!r}")
    return parsed


def age_seconds(timestamp: str | None, now: float) -> float | None:
    """Seconds since an RFC 3339 timestamp (never negative), or None if absent or unparsable."""
    if not timestamp:
        return None
    try:
        then = parse_rfc3339(timestamp)
    except ValueError:
        return None
    return max(0.0, now - then.timestamp())
