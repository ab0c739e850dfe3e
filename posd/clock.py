"""Time formatting shared by the journal, the envelope and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(ts: float) -> str:
    """UTC RFC 3339 with microseconds and a Z, e.g. 2026-11-25T12:00:00.123456Z."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
