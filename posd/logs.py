"""Logging set-up: structlog, JSON lines when not on a TTY (journald), console on a TTY.

`redact_event` runs last before rendering on every event, so a card number that slipped into
any field, nested value or exception text is replaced before a byte is written.

Under systemd (`JOURNAL_STREAM` set: stderr is connected to the journal) each line starts
with its syslog priority, `<3>` for an error (sd-daemon(3)); journald strips the prefix and
stores the priority, so `journalctl -p err` filters. While a progress bar is drawn, lines go
through the bar's writer (`redirect_stderr_lines`), so a log line never lands inside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TextIO

import structlog

from posd.errors import UsageError
from posd.redact import redact_event

LEVELS = ("debug", "info", "warning", "error", "critical")
JOURNAL_STREAM_ENV = "JOURNAL_STREAM"
# sd-daemon(3) / syslog(3) priorities of our levels.
SYSLOG_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}
PRIORITY_KEY = "_syslog_priority"

LineWriter = Callable[[str], None]
_line_writer: LineWriter | None = None


@contextlib.contextmanager
def redirect_stderr_lines(writer: LineWriter) -> Iterator[None]:
    """While open, log output goes to `writer` one whole line at a time (a progress bar's
    `write`, which clears the bar, prints the line and draws the bar again)."""
    global _line_writer
    previous, _line_writer = _line_writer, writer
    try:
        yield
    finally:
        _line_writer = previous


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing (test runners swap it), or
    whole lines to the writer `redirect_stderr_lines` installed."""

    def __init__(self) -> None:
        self._partial = ""

    def write(self, text: str) -> int:
        writer = _line_writer
        if writer is None:
            return sys.stderr.write(text)
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            writer(line + "\n")
        return len(text)

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
    renderer = _priority_renderer(renderer, prefix=bool(os.environ.get(JOURNAL_STREAM_ENV)))
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _note_priority,
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


def _note_priority(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    """Remember the line's syslog priority (for the journald prefix) before rendering."""
    event[PRIORITY_KEY] = SYSLOG_PRIORITY.get(str(event.get("level", "")).lower(), 6)
    return event


def _priority_renderer(renderer: Any, prefix: bool) -> Any:
    """`renderer`, with `<N>` before each line when `prefix` (stderr is the journal)."""

    def render(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        priority = event.pop(PRIORITY_KEY, SYSLOG_PRIORITY["info"])
        line = renderer(logger, method, event)
        return f"<{priority}>{line}" if prefix else line

    return render
