"""Link state: online/offline detection from whole-request failures, and probe pacing.

The state is `unknown` until a request was answered or the link was found offline: with
nothing to send, nothing is known. `misconfigured` means EventBridge (or the SDK) refused the
configuration itself (credentials, a missing bus, no permission; which failures say so is
decided in `sync.eventbridge.retry`): it is reported at once, not after `offline_after`
failures, and probed like an offline link so a fix is picked up.

Online, each failure pauses sending for a full-jitter backoff; after `offline_after`
consecutive failures the link is offline and exactly one probe request may be in flight at a
time, spaced by jittered exponential backoff between the probe bounds. Any response from
EventBridge (even one with failed entries) proves the link works and brings it back online.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.pacing.backoff import FullJitterBackoff

UNKNOWN = "unknown"
ONLINE = "online"
OFFLINE = "offline"
MISCONFIGURED = "misconfigured"
# States in which only one probe request is sent at a time.
PROBING_STATES = frozenset({OFFLINE, MISCONFIGURED})


@dataclass(frozen=True)
class LinkSnapshot:
    state: str
    offline_since: float | None
    last_success: float | None
    last_error: str | None
    consecutive_failures: int


class LinkMonitor:
    def __init__(
        self,
        offline_after: int,
        failure_backoff: FullJitterBackoff,
        probe_backoff: FullJitterBackoff,
        probe_min_seconds: float,
    ) -> None:
        self._offline_after = offline_after
        self._failure_backoff = failure_backoff
        self._probe_backoff = probe_backoff
        self._probe_min = probe_min_seconds
        self.state = UNKNOWN
        self.offline_since: float | None = None
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.consecutive_failures = 0
        self._first_failure_at: float | None = None
        self._next_send_at = 0.0

    @property
    def offline(self) -> bool:
        return self.state == OFFLINE

    @property
    def probing(self) -> bool:
        """Offline or misconfigured: one probe at a time."""
        return self.state in PROBING_STATES

    @property
    def misconfigured(self) -> bool:
        return self.state == MISCONFIGURED

    def may_send(self, now: float) -> bool:
        return now >= self._next_send_at

    def next_send_at(self) -> float:
        return self._next_send_at

    def record_success(self, now: float) -> bool:
        """Note a response; True when this brought the link back online."""
        recovered = self.state in PROBING_STATES
        self.state = ONLINE
        self.offline_since = None
        self.last_success = now
        self.consecutive_failures = 0
        self._first_failure_at = None
        self._next_send_at = 0.0
        return recovered

    def record_failure(self, now: float, error: str) -> bool:
        """Note a whole-request failure; True when this took the link offline."""
        self.last_error = error
        self.consecutive_failures += 1
        if self._first_failure_at is None:
            self._first_failure_at = now
        went_offline = False
        if self.state in (UNKNOWN, ONLINE) and self.consecutive_failures >= self._offline_after:
            self.state = OFFLINE
            self.offline_since = self._first_failure_at
            went_offline = True
        if self.state == OFFLINE:
            probes = self.consecutive_failures - self._offline_after + 1
            wait = self._probe_min + self._probe_backoff.delay(probes)
        else:
            wait = self._failure_backoff.delay(self.consecutive_failures)
        self._next_send_at = max(self._next_send_at, now + wait)
        return went_offline

    def record_misconfigured(self, now: float, error: str) -> bool:
        """Note a refusal of the configuration; True when the state changed to misconfigured.

        Probed from then on like an offline link (the next probe after `probe_min` plus
        jittered backoff), so a fixed IAM policy or bus is noticed without a restart."""
        changed = self.state != MISCONFIGURED
        self.last_error = error
        self.consecutive_failures += 1
        if changed:
            self.state = MISCONFIGURED
            self.offline_since = now
        wait = self._probe_min + self._probe_backoff.delay(self.consecutive_failures)
        self._next_send_at = max(self._next_send_at, now + wait)
        return changed

    def snapshot(self) -> LinkSnapshot:
        return LinkSnapshot(
            self.state,
            self.offline_since,
            self.last_success,
            self.last_error,
            self.consecutive_failures,
        )
