"""Exponential backoff with full jitter, computed by tenacity's `wait_random_exponential`.

The engine does not block in a tenacity retry loop: a failed record goes back to the journal
with a due time, so retries survive restarts and never hold up other records. tenacity
supplies the wait policy (delay = uniform(0, min(cap, base * 2 ** (attempt - 1)))).
"""

from __future__ import annotations

from tenacity import RetryCallState, Retrying, wait_random_exponential


class FullJitterBackoff:
    """Delay before retry number `attempt` (1-based)."""

    def __init__(self, base_seconds: float, cap_seconds: float) -> None:
        self._wait = wait_random_exponential(multiplier=base_seconds, max=cap_seconds)
        self._retrying = Retrying()

    def delay(self, attempt: int) -> float:
        state = RetryCallState(retry_object=self._retrying, fn=None, args=(), kwargs={})
        state.attempt_number = max(1, attempt)
        return float(self._wait(state))
