"""The silence after which a swipe cut across reports is taken as cut short.

Readers that cut a swipe across input reports send them back to back; a report lost on the
way (a USB error, a reader reset) would otherwise leave its fragment waiting for the rest,
and the next swipe would be glued onto it. Shared by the assemblers that cut swipes so.
"""

from __future__ import annotations

REPORT_GAP_S = 0.5  # silence after which a report cut short is dropped


class ReportGap:
    """When a partial swipe's last report came, to tell a swipe cut short by `gap_s` of
    silence (its fragment is to be dropped) from one still arriving."""

    def __init__(self, gap_s: float = REPORT_GAP_S) -> None:
        self._gap_s = gap_s
        self._last_at: float | None = None

    @property
    def seconds(self) -> float:
        return self._gap_s

    def passed(self, now: float) -> bool:
        """More than `gap_s` since the last report of a partial swipe (monotonic `now`)."""
        return self._last_at is not None and now - self._last_at > self._gap_s

    def report(self, now: float) -> None:
        """A report of the partial swipe came at `now`."""
        self._last_at = now

    def clear(self) -> None:
        """No partial swipe any more: silence from now on cuts nothing short."""
        self._last_at = None
