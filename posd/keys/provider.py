"""Rotation, background prefetch and offline fallback of data keys.

Capture calls `key_for_record()`, which never touches the network: the next key from the
primary source (KMS) is fetched ahead by a background thread. If rotation is due but the next
key has not arrived, the current key stays in use a little longer. With no key at all (KMS
unreachable since start-up) the fallback source (offline RSA wrapping, local CPU only) makes
one, and the provider moves back to the primary as soon as a key from it is ready.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from posd.errors import KeyProviderError
from posd.keys.base import DataKey, KeySource
from posd.keys.settings import ROTATE_AFTER_RECORDS, ROTATE_AFTER_SECONDS
from sync.pacing.backoff import FullJitterBackoff

RETRY_INITIAL_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0

log = structlog.get_logger("posd.keys")


@dataclass
class _InUse:
    key: DataKey
    source: str
    since: float
    records: int = 0


class RotatingKeyProvider:
    def __init__(
        self,
        primary: KeySource,
        fallback: KeySource | None = None,
        *,
        rotate_after_records: int = ROTATE_AFTER_RECORDS,
        rotate_after_seconds: float = ROTATE_AFTER_SECONDS,
        after_primary_success: Sequence[Callable[[], None]] = (),
        retry_initial_seconds: float = RETRY_INITIAL_SECONDS,
        retry_max_seconds: float = RETRY_MAX_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        real_seconds: Callable[[float], float] = float,
    ) -> None:
        """`clock` times rotation; `real_seconds` turns a pause on it into real seconds (a
        rehearsal's faster clock, sync/clock.py)."""
        self._primary = primary
        self._fallback = fallback
        self._rotate_records = rotate_after_records
        self._rotate_seconds = rotate_after_seconds
        self._after_success = list(after_primary_success)
        self._retry_backoff = FullJitterBackoff(retry_initial_seconds, retry_max_seconds)
        self._clock = clock
        self._real_seconds = real_seconds
        # Payments take the lock itself (a C context manager); the prefetcher waits on the
        # condition over it.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._current: _InUse | None = None
        self._next: DataKey | None = None
        self._stopped = False
        self._primary_failures = 0
        self._last_error: str | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> RotatingKeyProvider:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._prefetch_loop, name="key-prefetch", daemon=True
            )
            self._thread.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to `timeout` until a key from the primary source is prefetched.

        For start-up (so the first payments use KMS keys, not the fallback) and tests.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._next is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> RotatingKeyProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- capture path ----------------------------------------------------------------------

    def key_for_record(self) -> DataKey:
        """The key to seal the next record with. Never waits on the network."""
        with self._lock:
            current = self._current
            # `_should_switch` only for a key that is due or not the primary's (it says no to
            # any other): two Python calls fewer on every payment's path.
            if current is None or (
                (
                    current.records >= self._rotate_records
                    or self._clock() - current.since >= self._rotate_seconds
                    or current.source != self._primary.name
                )
                and self._should_switch(current)
            ):
                current = self._switch()
            current.records += 1
            return current.key

    def _due(self, current: _InUse) -> bool:
        age = self._clock() - current.since
        return current.records >= self._rotate_records or age >= self._rotate_seconds

    def _should_switch(self, current: _InUse) -> bool:
        if self._next is not None:
            return self._due(current) or current.source != self._primary.name
        # Nothing prefetched (the primary is unreachable): a due key, the primary's too, is
        # replaced by a fallback key (made locally, no network), so no key outlives its
        # rotation however long the outage lasts. Without a fallback the key in use goes on.
        return self._fallback is not None and self._due(current)

    def _switch(self) -> _InUse:
        if self._next is not None:
            chosen = _InUse(self._next, self._primary.name, self._clock())
            self._next = None
            self._cond.notify_all()  # wake the prefetcher for the one after
        elif self._fallback is not None:
            chosen = _InUse(self._fallback.new_data_key(), self._fallback.name, self._clock())
            log.warning("data_key_fallback", source=self._fallback.name, reason=self._last_error)
        else:
            raise self._no_key_error()
        self._current = chosen
        return chosen

    # -- background ------------------------------------------------------------------------

    def _prefetch_loop(self) -> None:
        hooks_done = False  # run after each primary success until they all succeed once
        while True:
            with self._cond:
                while self._next is not None and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
            try:
                key = self._primary.new_data_key()
            except Exception as error:  # noqa: BLE001 - the prefetcher must outlive any failure
                detail = str(error) if isinstance(error, KeyProviderError) else type(error).__name__
                self._note_failure(detail)
                # Only this thread changes the failure count: reading it here is safe.
                if self._pause(self._retry_backoff.delay(self._primary_failures)):
                    return
                continue
            with self._cond:
                if self._primary_failures:
                    log.info(
                        "data_key_source_recovered",
                        source=self._primary.name,
                        failures=self._primary_failures,
                    )
                self._primary_failures = 0
                self._next = key
                self._cond.notify_all()
            if not hooks_done:
                hooks_done = self._run_after_success_hooks()

    def _pause(self, seconds: float) -> bool:
        """Sleep unless closed meanwhile; True if the provider was closed."""
        with self._cond:
            if not self._stopped:
                self._cond.wait(self._real_seconds(seconds))
            return self._stopped

    def _note_failure(self, message: str) -> None:
        with self._cond:
            self._primary_failures += 1
            self._last_error = message
            first = self._primary_failures == 1
        if first:
            log.warning("data_key_source_failing", source=self._primary.name, error=message)

    def _run_after_success_hooks(self) -> bool:
        """Run the hooks (caching the offline public key); True if all succeeded."""
        ok = True
        for hook in self._after_success:
            try:
                hook()
            except KeyProviderError as error:
                log.warning("data_key_hook_failed", error=str(error))
                ok = False
        return ok

    def unavailable(self) -> KeyProviderError | None:
        """The error `key_for_record` would raise now (no key in use, none prefetched, no
        fallback: every payment is refused), or None."""
        with self._cond:
            if self._current is not None or self._next is not None or self._fallback is not None:
                return None
            return self._no_key_error()

    def _no_key_error(self) -> KeyProviderError:
        return KeyProviderError(
            "no data key available: the key service is unreachable and no offline key "
            f"is configured ({self._last_error or 'still starting'})"
        )

    def status(self) -> dict[str, Any]:
        with self._cond:
            current = self._current
            return {
                "source": current.source if current else None,
                "key_id": current.key.key_id if current else None,
                "records_on_key": current.records if current else 0,
                "next_key_ready": self._next is not None,
                "primary_failures": self._primary_failures,
                "last_error": self._last_error,
            }
