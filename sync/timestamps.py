"""The outbox's timestamp format: RFC 3339 in UTC, written and read in one place.

`OutboxRecord.captured_at` is produced by the journal (posd) and read by the engine (sync) and
by status displays; they all use these functions, so every age shown is computed one way.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

US_PER_SECOND = 1_000_000
_SECOND_FORMAT = "%Y-%m-%dT%H:%M:%S"
_FRACTION_FORMAT = "%s.%06dZ"  # the second's text, then the microseconds: one %-format
# (whole second, its text): each payment's append stamps its record, most in a second already
# formatted. Read and replaced whole, so threads never see half of it.
_last_second: tuple[int, str] = (0, datetime.fromtimestamp(0, tz=UTC).strftime(_SECOND_FORMAT))


def rfc3339(ts: float) -> str:
    """UTC RFC 3339 with microseconds and a Z, e.g. 2026-11-25T12:00:00.123456Z: the text of
    `datetime.fromtimestamp(ts, UTC)`, whose microseconds are rounded half to even; the
    seconds' part is formatted once per second."""
    global _last_second
    fraction, whole = math.modf(ts)
    micros = round(fraction * US_PER_SECOND)
    if micros >= US_PER_SECOND:
        micros -= US_PER_SECOND
        whole += 1
    elif micros < 0:
        micros += US_PER_SECOND
        whole -= 1
    second = int(whole)
    cached = _last_second
    if cached[0] != second:
        cached = _last_second = (
            second,
            datetime.fromtimestamp(second, tz=UTC).strftime(_SECOND_FORMAT),
        )
    return _FRACTION_FORMAT % (cached[1], micros)


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
