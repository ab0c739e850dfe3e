"""What every device class shares: lifecycle, health, device info, reconnect backoff.

Each device class (card reader, palm scanner...) is an ABC deriving from `Device`; drivers
implement `_open`/`_close` and their class's operations, and report what happens through the
`HealthMonitor` they own. The daemon only sees `open()`, `close()`, `health()` and the context
manager, whatever the class.

One contract for every device class: **outcomes are returned, faults are raised.**

- The ordinary ends of a customer interaction come back as typed values
  (`drivers.outcomes`): cancelled by the cashier or on the device, nothing presented in time,
  a card removed or unreadable, a palm that matches nobody. They happen many times a day, the
  caller must handle every one of them (a union return type makes the type checker say so),
  and none says anything about the device's health.
- Faults of the device or its link raise from the one hierarchy of `drivers.errors`: not
  found, disconnected and not back in time, stopped answering (`DeviceTimeout`), protocol
  violations, card data that fails validation (`CardDataError`). The caller cannot finish the
  interaction; it reports the fault and looks at `health()`.

So "no card within `timeout`" is `TimedOut`, while "the reader did not answer a command" is
`DeviceTimeout`; a `cancel()` from another thread always ends the pending call with
`Cancelled`, even while it waits for an unplugged device to come back.
"""

from __future__ import annotations

import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import ClassVar, Self, TypeVar

from tenacity import RetryCallState, Retrying, wait_exponential

from drivers.errors import DeviceDisconnected, DeviceError, OptionError, ReconnectInterrupted

Clock = Callable[[], float]
T = TypeVar("T")

DEFAULT_BACKOFF_INITIAL_S = 0.5
DEFAULT_BACKOFF_MAX_S = 30.0
DEFAULT_BACKOFF_MULTIPLIER = 2.0


@dataclass(frozen=True)
class DeviceInfo:
    """Who the device says it is. Safe to log and to show in status output."""

    model: str
    firmware: str
    serial_number: str
    driver: str = ""
    port: str = ""


@dataclass(frozen=True)
class Health:
    """A snapshot of a device's state for status pages and monitoring.

    `last_error` is the safe message of the most recent failure (kept after recovery, so an
    operator sees why the lane blinked); `disconnected_since` is wall-clock (time.time()).
    """

    connected: bool
    last_error: str | None = None
    info: DeviceInfo | None = None
    reconnects: int = 0
    disconnects: int = 0
    disconnected_since: float | None = None
    next_retry_in_s: float | None = None


def require_positive(**options: float) -> None:
    """`OptionError` naming the first option that is not a finite number > 0."""
    for name, value in options.items():
        if not 0 < value < float("inf"):
            raise OptionError(name, "must be a finite number > 0")


@dataclass(frozen=True)
class Backoff:
    """Exponential reconnect delays: initial_s, initial_s*multiplier, ... capped at `max_s`.

    The delays are tenacity's `wait_exponential` (the sync engine's backoff is tenacity's
    too), driven one attempt at a time: a driver does not block in a retry loop, it keeps the
    schedule across calls (`Reconnector`). No jitter: each lane reconnects to its own
    USB/serial device, there is no shared server to protect from a thundering herd.
    """

    initial_s: float = DEFAULT_BACKOFF_INITIAL_S
    max_s: float = DEFAULT_BACKOFF_MAX_S
    multiplier: float = DEFAULT_BACKOFF_MULTIPLIER

    def __post_init__(self) -> None:
        require_positive(backoff_initial_s=self.initial_s, backoff_max_s=self.max_s)
        if self.multiplier < 1:
            raise OptionError("backoff_multiplier", "must be >= 1")

    def delays(self) -> Iterator[float]:
        wait = wait_exponential(multiplier=self.initial_s, exp_base=self.multiplier, max=self.max_s)
        state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
        for attempt in itertools.count(1):
            state.attempt_number = attempt
            yield float(wait(state))


@dataclass
class HealthMonitor:
    """Thread-safe record of connects, errors and disconnects, read as `Health` snapshots."""

    _health: Health = field(default_factory=lambda: Health(connected=False))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    wall_clock: Clock = time.time

    def snapshot(self) -> Health:
        with self._lock:
            return self._health

    def connected(self, info: DeviceInfo | None = None) -> None:
        with self._lock:
            was_down = self._health.disconnected_since is not None
            self._health = replace(
                self._health,
                connected=True,
                info=info or self._health.info,
                reconnects=self._health.reconnects + (1 if was_down else 0),
                disconnected_since=None,
                next_retry_in_s=None,
            )

    def error(self, error: BaseException) -> None:
        with self._lock:
            self._health = replace(self._health, last_error=_describe(error))

    def disconnected(self, error: BaseException) -> None:
        with self._lock:
            since = self._health.disconnected_since
            self._health = replace(
                self._health,
                connected=False,
                last_error=_describe(error),
                disconnects=self._health.disconnects + (0 if since is not None else 1),
                disconnected_since=since if since is not None else self.wall_clock(),
            )

    def retrying_in(self, delay: float | None) -> None:
        with self._lock:
            self._health = replace(self._health, next_retry_in_s=delay)

    def closed(self) -> None:
        with self._lock:
            self._health = replace(
                self._health, connected=False, disconnected_since=None, next_retry_in_s=None
            )


class Reconnector:
    """Reconnect with exponential backoff, remembered across calls.

    After `lost()`, the first attempt is immediate; each failure pushes the next attempt out by
    the next backoff delay, also for later callers (a status poll every second does not reset
    the schedule). `connect()` is bounded by the caller's deadline: when the next attempt
    would fall after it, `DeviceDisconnected` is raised at once instead of sleeping in vain.
    """

    def __init__(
        self,
        backoff: Backoff,
        monitor: HealthMonitor,
        clock: Clock = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._backoff = backoff
        self._monitor = monitor
        self._clock = clock
        self._cancel = threading.Event()
        self._wait = wait or self._cancel.wait
        self._delays = backoff.delays()
        self._next_attempt_at = clock()
        self.attempts = 0

    def lost(self, error: BaseException) -> None:
        """The device just went away: attempt again now, then back off."""
        self._monitor.disconnected(error)
        self._delays = self._backoff.delays()
        self._next_attempt_at = self._clock()

    def interrupt(self) -> None:
        """Wake a waiting `connect` (it raises `ReconnectInterrupted`); from any thread."""
        self._cancel.set()

    def connect(self, attempt: Callable[[], T], deadline: float) -> T:
        self._cancel.clear()
        while True:
            now = self._clock()
            if self._next_attempt_at > deadline:
                self._monitor.retrying_in(max(0.0, self._next_attempt_at - now))
                raise DeviceDisconnected(
                    "device is disconnected and did not come back in time"
                    f" (next retry in {max(0.0, self._next_attempt_at - now):.2f} s)"
                )
            if self._next_attempt_at > now:
                self._monitor.retrying_in(self._next_attempt_at - now)
                if self._wait(self._next_attempt_at - now):
                    raise ReconnectInterrupted("cancelled while waiting for the device")
            self.attempts += 1
            try:
                result = attempt()
            except DeviceError as error:
                self._monitor.disconnected(error)
                self._next_attempt_at = self._clock() + next(self._delays)
                continue
            self._delays = self._backoff.delays()
            return result


def _describe(error: BaseException) -> str:
    """`code: message` for our errors, the class name only for anything else.

    Foreign exceptions (pyserial, OSError) may quote data we do not control, so only their
    type is kept.
    """
    if isinstance(error, DeviceError):
        return f"{error.code}: {error}"
    return type(error).__name__


class Device(ABC):
    """Lifecycle shared by every device class: open/close, context manager, health."""

    #: The device class name used in config and in the driver table ("card-reader"...).
    device_class: ClassVar[str]

    def __init__(self) -> None:
        self._monitor = HealthMonitor()
        self._is_open = False

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> None:
        """Open the device and identify it. Raises `DeviceInitError` (or a subclass)."""
        if self._is_open:
            return
        self._open()
        self._is_open = True

    def close(self) -> None:
        """Release the device. Idempotent; never raises for an already-gone device."""
        if not self._is_open:
            return
        self._is_open = False
        try:
            self._close()
        finally:
            self._monitor.closed()

    def health(self) -> Health:
        """The current health snapshot. Never does I/O, never blocks on the device."""
        return self._monitor.snapshot()

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
