"""What every USB device driver holds whatever its protocol: one live link, the I/O lock,
the cancel flag, the libusb backend, open/close, and a connect that closes what it claimed
when the driver's own checks fail.

Mixed in before the device class (`class AmazonOneScanner(UsbDriver, PalmScanner)`), so its
`_open`/`_close`/`cancel` are the device's. A driver supplies `_on_connect(link)`: whatever it
must do on a fresh link (a handshake, a descriptor check) and the `DeviceInfo` it learns.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from typing import Any, ClassVar

from drivers.base import Backoff, DeviceInfo, HealthMonitor, Reconnector
from drivers.errors import DriverUnavailable
from drivers.usb.link import LinkSpec, UsbLink, UsbSelector
from drivers.usb.session import UsbSession


class UsbDriver:
    """The protocol-free half of a pyusb driver (see the module docstring)."""

    driver_name: ClassVar[str]
    _monitor: HealthMonitor  # the device class's (`drivers.base.Device`)

    def _start_usb(self, selector: UsbSelector, spec: LinkSpec, backoff: Backoff) -> None:
        """Called from the driver's `__init__`, after `Device.__init__`."""
        self._selector = selector
        self._link_spec = spec
        self._session = UsbSession(
            self._connect, Reconnector(backoff, self._monitor), self._monitor, spec.device_name
        )
        self._clock = time.monotonic
        self._io_lock = threading.Lock()
        self._cancel_requested = threading.Event()
        self._backend: Any = None

    @property
    def reconnect_attempts(self) -> int:
        """Attempts to re-find the device since it was created (for status and tests)."""
        return self._session.attempts

    def _usb_backend(self) -> Any:
        """The pyusb backend to search: libusb-1.0. Simulated drivers return their bus."""
        try:  # imported here: the simulated path never loads a libusb backend module
            import usb.backend.libusb1
        except ImportError as error:
            raise DriverUnavailable("pyusb's libusb1 backend cannot be imported") from error
        backend = usb.backend.libusb1.get_backend()
        if backend is None:
            raise DriverUnavailable(
                f"the {self.driver_name} driver needs libusb-1.0, which was not found"
            )
        return backend

    @abstractmethod
    def _on_connect(self, link: UsbLink) -> DeviceInfo:
        """On a freshly claimed link: the driver's own checks and handshake, and who the
        device is. Raise a `DeviceError` to refuse the device (the link is closed)."""

    def _connect(self) -> UsbLink:
        link = UsbLink.connect(self._backend, self._selector, self._link_spec)
        try:
            info = self._on_connect(link)
        except BaseException:
            link.close()
            raise
        self._monitor.connected(info)
        return link

    def _open(self) -> None:
        try:
            self._backend = self._usb_backend()
        except DriverUnavailable as error:  # no libusb: health says why the device is down
            self._monitor.error(error)
            raise
        self._session.open()

    def _close(self) -> None:
        self.cancel()
        with self._io_lock:
            self._session.close()

    def cancel(self) -> None:
        """End the pending operation (it polls the flag) or a wait for an unplugged device;
        from any thread."""
        self._cancel_requested.set()
        self._session.interrupt()
