"""Logging set-up: structlog, JSON lines when not on a TTY (journald), console on a TTY.

`redact_event` runs last before rendering on every event, so a card number that slipped into
any field, nested value or exception text is replaced before a byte is written.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from posd.errors import UsageError
from posd.redact import redact_event

LEVELS = ("debug", "info", "warning", "error", "critical")


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    level: str = "info", stream: TextIO | None = None, force_json: bool | None = None
) -> None:
    if level.lower() not in LEVELS:
        raise UsageError(f"log level must be one of {', '.join(LEVELS)} (got {level!r})")
    out: Any = stream or _CurrentStderr()
    as_json = force_json if force_json is not None else not out.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
