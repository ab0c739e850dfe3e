"""A minimal progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
REDRAW_SECONDS = 0.1


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self._label = label
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._last_draw = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last_draw < REDRAW_SECONDS:
            return
        self._last_draw = now
        fraction = done / total if total else 1.0
        filled = int(BAR_WIDTH * fraction)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total}")
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()
