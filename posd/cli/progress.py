"""Progress bars on stderr (tqdm: count, rate, ETA), drawn only when stderr is a terminal.

While a bar is open, log lines are written above it (`posd.logs.redirect_stderr_lines`), never
into it; a bar is always closed (its line ended) before a command prints its result, whether
the work finished or not; a bar closed once is never drawn again.
"""

from __future__ import annotations

import contextlib
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from posd.logs import redirect_stderr_lines

if TYPE_CHECKING:
    from tqdm import tqdm

BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar:30}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
)
MIN_REDRAW_SECONDS = 0.1


class Progress:
    """`bar(done, total)` as work advances; `close()` (or `with`) when it ends."""

    def __init__(self, label: str, unit: str = "rec", stream: TextIO | None = None) -> None:
        self._label = label
        self._unit = unit
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._bar: tqdm[Any] | None = None
        self._redirect: contextlib.ExitStack | None = None
        self._closed = False

    def __call__(self, done: int, total: int) -> None:
        if not self._enabled or self._closed:
            return
        bar = self._bar or self._open(total)
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            self.close()

    def _open(self, total: int) -> tqdm[Any]:
        from tqdm import tqdm

        bar: tqdm[Any] = tqdm(
            total=total,
            desc=self._label,
            unit=self._unit,
            file=self._stream,
            bar_format=BAR_FORMAT,
            mininterval=MIN_REDRAW_SECONDS,
            dynamic_ncols=True,
            leave=True,
        )
        self._bar = bar
        self._redirect = contextlib.ExitStack()
        self._redirect.enter_context(
            redirect_stderr_lines(lambda line: tqdm.write(line, file=self._stream, end=""))
        )
        return bar

    def close(self) -> None:
        """End the bar's line (once); later calls draw nothing."""
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._redirect is not None:
            self._redirect.close()
            self._redirect = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
