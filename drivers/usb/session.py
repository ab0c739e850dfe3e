"""A USB driver's one live link: opened once, dropped when the device goes, re-found with
backoff (`drivers.base.Reconnector`) when next needed. Shared by the palm scanner and the HID
card readers; what a connect does (claim, handshake, read descriptors) is the driver's.

Not locked itself: the driver calls it under the I/O lock it already holds for transfers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from drivers.base import HealthMonitor, Reconnector
from drivers.errors import DeviceDisconnected, DeviceError, DeviceInitError, DriverUnavailable
from drivers.usb.link import UsbLink

log = logging.getLogger(__name__)  # names the device kind and error codes only


class UsbSession:
    """At most one `UsbLink`: `open()`, `current(deadline)`, `lost(error)`, `close()`."""

    def __init__(
        self,
        connect: Callable[[], UsbLink],
        reconnector: Reconnector,
        monitor: HealthMonitor,
        device_name: str,
    ) -> None:
        self._connect = connect
        self._reconnector = reconnector
        self._monitor = monitor
        self._name = device_name
        self._link: UsbLink | None = None

    @property
    def attempts(self) -> int:
        """Attempts to re-find the device so far (for status and tests)."""
        return self._reconnector.attempts

    def open(self) -> None:
        """First connect: `DeviceInitError` (recorded in health) if it fails in any way,
        `DriverUnavailable` if pyusb has no backend (no libusb)."""
        try:
            self._link = self._connect()
        except (DeviceInitError, DriverUnavailable) as error:
            self._monitor.error(error)
            raise
        except DeviceError as error:
            self._monitor.error(error)
            raise DeviceInitError(f"{self._name} did not identify itself: {error}") from error

    def current(self, deadline: float) -> UsbLink:
        """The live link, re-finding the device (with backoff, until `deadline`) if it was
        lost; `DeviceDisconnected` if not back in time, `ReconnectInterrupted` on a cancel."""
        if self._link is None:
            self._link = self._reconnector.connect(self._connect, deadline)
        return self._link

    def lost(self, error: DeviceDisconnected) -> None:
        """The device went away: dispose of the link; the next `current` re-finds it."""
        log.warning("%s: %s; reconnecting", self._name, error)
        self.close()
        self._reconnector.lost(error)

    def interrupt(self) -> None:
        """Wake a `current` waiting for the device (from any thread)."""
        self._reconnector.interrupt()

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
