"""The USB HID card readers' common part: find, claim, read input reports, reconnect.

Three reader classes a store can buy share it (`hid_keyboard`, `hid_msr`, `secure_msr`).
They differ only in how input reports become a swipe (`SwipeAssembler`) and how a swipe
becomes card data (`_decode`). A HID reader has no "arm" command: it reports whenever a card
is swiped, so reports that arrive while no `read_card` waits are read and dropped (a swipe
outside a payment must never be charged later), and the kernel's driver is detached so that
a keyboard-emulating reader never types a card number into another window; it is not given
back when the reader is closed, for the same reason.

What `read_card` does with what the reader sends:

- Reports queued before the read started are drained and dropped first. If any was queued, a
  swipe was arriving: the drain goes on until the line has been quiet for the assembler's own
  gap (`SwipeAssembler.quiet_s`), so that swipe is dropped whole, never its tail read as a new
  one. A quiet line is ready at once: a swipe the moment the read starts counts.
- The interrupt IN endpoint is read in slices of `report_poll_s`, so a `cancel()` from another
  thread ends the read with `Cancelled` within one slice; a slice with no report calls the
  assembler's `expire` (a keyboard reader's swipe may end on silence).
- A malformed report (the assembler raises `ProtocolError`): the partial swipe is dropped,
  health records the error, and the read returns `CardUnreadable`: the cashier swipes again,
  exactly as for a swipe the reader itself flags as bad.
- Unplug (ENODEV): health turns `connected=False`, the partial swipe is dropped, and the
  device is re-found with exponential backoff (`drivers.base.Reconnector`) until the read's
  deadline; the read then goes on waiting for a swipe. Not back by the deadline:
  `DeviceDisconnected`. A `cancel()` meanwhile returns `Cancelled` at once.

Options (config `[devices.card_reader]`): `vendor_id`, `product_id` (required),
`serial_number` (take only this unit), `interface` (default 0), `report_poll_s` (default
0.05 s: the longest a cancel waits), `backoff_initial_s`, `backoff_max_s` (re-find schedule
after an unplug).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import usb.util

from drivers.base import (
    DEFAULT_BACKOFF_INITIAL_S,
    DEFAULT_BACKOFF_MAX_S,
    Backoff,
    DeviceInfo,
    require_positive,
)
from drivers.card.protocol import ReaderState
from drivers.card.reader import DEFAULT_READ_TIMEOUT_S, CardReader
from drivers.card.results import CardUnreadable, ReadResult
from drivers.errors import (
    CardDataError,
    DeviceDisconnected,
    DeviceError,
    DeviceOperationError,
    ProtocolError,
    ReconnectInterrupted,
)
from drivers.outcomes import Cancelled, TimedOut
from drivers.usb.driver import UsbDriver
from drivers.usb.link import LinkSpec, UsbLink, UsbSelector

log = logging.getLogger(__name__)  # messages carry ids, locations and error codes, never card data

DEFAULT_REPORT_POLL_S = 0.05
# Reports drained at the start of a read are bounded, in case a device never stops talking.
MAX_STALE_REPORTS = 4096
# The quiet that ends a status/identify drain (a read waits for its assembler's `quiet_s`).
STALE_READ_TIMEOUT_S = 0.005
# Silence after which a reader that sends a swipe's reports back to back (one per interrupt
# interval, a few ms) has finished; assemblers with a gap of their own say so (`quiet_s`).
DEFAULT_QUIET_S = 0.1
# The largest input report read in one interrupt transfer (full-speed interrupt maximum).
MAX_REPORT_SIZE = 64
LINK = LinkSpec(
    device_name="card reader",
    transfer_type=usb.util.ENDPOINT_TYPE_INTR,
    needs_out=False,
    read_size=MAX_REPORT_SIZE,
    give_back_kernel_driver=False,
)


class SwipeAssembler(ABC):
    """Turns a reader's input reports into whole swipes (the bytes `_decode` parses)."""

    @abstractmethod
    def feed(self, report: bytes, now: float) -> bytes | None:
        """Take one input report (monotonic `now`); the finished swipe, or None for more.

        Raises `ProtocolError` for a report that cannot belong to a swipe."""

    @property
    @abstractmethod
    def in_progress(self) -> bool:
        """A swipe has begun and not ended (its first reports fed, not yet returned): the
        drain before a read waits for its end only then."""

    @property
    def quiet_s(self) -> float:
        """Silence after which no swipe is still arriving: the drain before a read waits for
        it, so the tail of a swipe in progress is never read as a new one."""
        return DEFAULT_QUIET_S

    def expire(self, now: float) -> bytes | None:
        """Called when no report came for a while: a swipe that ends on silence (keyboard
        readers' inter-key timeout) is returned here; None otherwise."""
        return None

    @abstractmethod
    def reset(self) -> None:
        """Drop a partial swipe (after a cancel, an unplug or a malformed report)."""


class HidCardReader(UsbDriver, CardReader, ABC):
    """A card reader on USB HID, selected by vendor id, product id and optional serial."""

    driver_name: ClassVar[str]

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        serial_number: str | None = None,
        interface: int = 0,
        report_poll_s: float = DEFAULT_REPORT_POLL_S,
        backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
    ) -> None:
        super().__init__()
        require_positive(report_poll_s=report_poll_s)
        self._start_usb(
            UsbSelector(vendor_id, product_id, serial_number, interface),
            LINK,
            Backoff(backoff_initial_s, backoff_max_s),
        )
        self._poll_s = report_poll_s
        self._armed = threading.Event()
        #: Reports read and dropped because no read was waiting (for status and tests).
        self.stale_reports_dropped = 0

    # -- hooks for the reader classes and their simulators ---------------------------------

    @abstractmethod
    def _assembler(self) -> SwipeAssembler:
        """A fresh assembler for this reader's report format."""

    @abstractmethod
    def _decode(self, swipe: bytes) -> ReadResult:
        """`CardRead` (CardData or EncryptedCardData) or `CardUnreadable` for a swipe the
        reader itself flagged as bad; raises a `CardDataError` for data that fails checks."""

    def _accept(self, link: UsbLink) -> None:
        """Check, once claimed, that the device is one this reader class can read (its
        report descriptor...); raise a `DeviceError` if not. Every device is by default."""
        return None

    def _read_started(self) -> None:
        """Called once a read is waiting for a swipe (stale reports dropped). Simulated
        drivers swipe their next deck card from here."""
        return None

    # -- lifecycle -------------------------------------------------------------------------

    def _on_connect(self, link: UsbLink) -> DeviceInfo:
        self._accept(link)
        info = link.device_info(self.driver_name)
        log.info(
            "card reader %s at %s (%s %s)",
            self._selector.describe(),
            link.location,
            info.model,
            info.firmware,
        )
        return info

    def _require_open(self) -> None:
        if not self.is_open:
            raise DeviceOperationError("card reader is not open")

    # -- operations ------------------------------------------------------------------------

    def identify(self) -> DeviceInfo:
        """Who the reader said it was in its descriptors (re-found if it was unplugged)."""
        self._require_open()
        self._when_idle(self._refresh)
        info = self.health().info
        if info is None:  # pragma: no cover - connected() always records it
            raise DeviceOperationError("card reader has not identified itself")
        return info

    def status(self) -> ReaderState:
        """ARMED while a read waits for a swipe (or for the unplugged reader to come back),
        else IDLE (re-finding an unplugged reader first)."""
        self._require_open()
        return ReaderState.IDLE if self._when_idle(self._refresh) else ReaderState.ARMED

    def read_card(
        self, amount_minor: int, currency: str, timeout: float = DEFAULT_READ_TIMEOUT_S
    ) -> ReadResult:
        """Wait up to `timeout` for a swipe (a HID reader is not armed: amount and currency
        are not sent to it). See the module docstring for what each event becomes."""
        require_positive(timeout=timeout)
        self._require_open()
        with self._io_lock:
            self._cancel_requested.clear()
            deadline = self._clock() + timeout
            assembler = self._assembler()
            try:
                try:
                    self._checked_session(deadline, assembler.quiet_s)
                except ReconnectInterrupted:
                    return Cancelled()
                self._armed.set()
                self._read_started()
                return self._wait_for_swipe(assembler, deadline)
            finally:
                self._armed.clear()

    # -- internals (called with the I/O lock held) -----------------------------------------

    def _when_idle(self, action: Callable[[], None]) -> bool:
        """Run `action` under the I/O lock unless a read is pending; whether it ran.

        A read holds the lock throughout; while it is still starting (dropping stale
        reports) this waits for it to be armed, so ARMED means a swipe now is read."""
        while not self._io_lock.acquire(timeout=self._poll_s):
            if self._armed.is_set() or not self.health().connected:
                return False
        try:
            action()
        finally:
            self._io_lock.release()
        return True

    def _refresh(self) -> None:
        self._checked_session(self._clock() + self._poll_s, STALE_READ_TIMEOUT_S)

    def _checked_session(self, deadline: float, quiet_s: float) -> None:
        """A live link with the reports that came while no read waited drained and dropped
        (until `quiet_s` without one, or `deadline`); a link found dead on the way is dropped
        and the device re-found (until `deadline`); any other error is recorded in health."""
        while True:
            link = self._session.current(deadline)
            try:
                dropped = self._drain(link, deadline, quiet_s)
            except DeviceDisconnected as error:
                self._session.lost(error)
                continue
            except DeviceError as error:
                self._monitor.error(error)
                raise
            if dropped:
                log.info("card reader: dropped %d reports sent while no read waited", dropped)
            return

    def _drain(self, link: UsbLink, deadline: float, quiet_s: float) -> int:
        """Read and drop what was sent while no read waited; how many reports were dropped.

        The line counts as quiet after `STALE_READ_TIMEOUT_S` without a report: the
        customer may swipe the moment the read starts, and that swipe must count. Only while
        the dropped reports hold a swipe that has begun and not ended (a throwaway assembler
        says so) does the drain wait for `quiet_s` after the last one, so that swipe goes
        whole and its tail is never read as a new one. A key-up report left over from the
        last swipe costs nothing. Bounded by `deadline` and `MAX_STALE_REPORTS`."""
        dropped = 0
        tracker = self._assembler()
        quiet_until = self._clock() + STALE_READ_TIMEOUT_S
        for _ in range(MAX_STALE_REPORTS):
            wait = min(quiet_until, deadline) - self._clock()
            report = link.read(wait) if wait > 0 else None
            if report is None:
                break
            self.stale_reports_dropped += 1
            dropped += 1
            now = self._clock()
            try:
                tracker.feed(report, now)
            except (ProtocolError, CardDataError):
                tracker.reset()  # garbage or a bad stale swipe: dropped all the same
            quiet = quiet_s if tracker.in_progress else STALE_READ_TIMEOUT_S
            quiet_until = now + quiet
        return dropped

    def _wait_for_swipe(self, assembler: SwipeAssembler, deadline: float) -> ReadResult:
        while True:
            if self._cancel_requested.is_set():
                return Cancelled()
            try:
                link = self._session.current(deadline)
            except ReconnectInterrupted:
                return Cancelled()
            now = self._clock()
            if now >= deadline:
                return TimedOut()
            try:
                report = link.read(min(self._poll_s, deadline - now))
            except DeviceDisconnected as error:
                assembler.reset()
                self._session.lost(error)
                continue
            except DeviceError as error:
                self._monitor.error(error)
                raise
            try:
                swipe = self._assemble(assembler, report)
            except ProtocolError as error:
                assembler.reset()
                self._monitor.error(error)
                log.warning("card reader: %s; partial swipe dropped", error)
                return CardUnreadable()
            if swipe is not None:
                return self._decode(swipe)

    def _assemble(self, assembler: SwipeAssembler, report: bytes | None) -> bytes | None:
        now = self._clock()
        if report is None:
            return assembler.expire(now)
        return assembler.feed(report, now)
