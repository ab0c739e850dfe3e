"""Repeated errors: logged once, then summarised at an interval, and once when they end.

A lane whose card reader is unplugged for a day, or whose link is down since the morning,
must not write a line per retry: the first failure of a kind is logged with its detail, the
ones after it are only counted and summarised every `interval_s`, and the recovery is logged
with how many failures it ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

DEFAULT_SUMMARY_INTERVAL_S = 300.0

log = structlog.get_logger("posd.daemon")


@dataclass
class _Streak:
    first_at: float
    last_logged_at: float
    count: int = 1
    unlogged: int = 0


class RepeatedErrors:
    def __init__(
        self,
        interval_s: float = DEFAULT_SUMMARY_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        logger: Any = None,
        level: str = "warning",
    ) -> None:
        """`logger` and `level`: where the first failure and the summaries go (the daemon's
        logger at warning unless told)."""
        self._interval = interval_s
        self._clock = clock
        self._log = logger or log
        self._level = level
        self._lock = threading.Lock()
        self._streaks: dict[str, _Streak] = {}

    def failed(self, key: str, **fields: Any) -> None:
        """Another failure of kind `key` (the event name)."""
        now = self._clock()
        with self._lock:
            streak = self._streaks.get(key)
            if streak is None:
                self._streaks[key] = _Streak(now, now)
                summary = None
            else:
                streak.count += 1
                streak.unlogged += 1
                if now - streak.last_logged_at < self._interval:
                    return
                summary = {
                    "repeated": streak.unlogged,
                    "failing_for_s": round(now - streak.first_at),
                }
                streak.last_logged_at, streak.unlogged = now, 0
        emit = getattr(self._log, self._level)
        if summary is None:
            emit(key, **fields)
        else:
            emit(f"{key}.still_failing", **summary, **fields)

    def recovered(self, key: str, **fields: Any) -> None:
        """The failures of kind `key` ended (logged only if there were any)."""
        with self._lock:
            streak = self._streaks.pop(key, None)
        if streak is not None:
            self._log.info(
                f"{key}.recovered",
                failures=streak.count,
                failing_for_s=round(self._clock() - streak.first_at),
                **fields,
            )

    def failing(self) -> dict[str, int]:
        """Kinds failing now, with their failure counts."""
        with self._lock:
            return {key: streak.count for key, streak in self._streaks.items()}
