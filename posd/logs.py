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
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    threshold = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact_event, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(out, threshold, shared, renderer)


def _route_stdlib_logging(out: Any, threshold: int, shared: list[Any], renderer: Any) -> None:
    """Send the standard library's logging (drivers, libraries) through the same redaction
    and rendering, so every line on stderr is one format and card-free."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(threshold)
