"""One claimed USB interface with an IN (and optionally an OUT) endpoint, pyusb errors mapped.

Everything pyusb-specific about a USB device lives here (the palm scanner's bulk pair, a HID
card reader's interrupt IN endpoint): finding the device through
`usb.core.find(backend=...)` (libusb for hardware, the simulated backend otherwise: the same
calls either way), configuring it, detaching a kernel driver, claiming the interface, bulk
transfers with timeouts, and turning pyusb's exceptions into `drivers.errors`:

    usb.core.USBTimeoutError          -> None from `read` (nothing arrived), DeviceTimeout on write
    no pyusb backend (no libusb)      -> DriverUnavailable
    USBError errno ENODEV             -> DeviceDisconnected (caller disposes and re-finds)
    USBError errno EPIPE (stall)      -> clear the halt and retry, then ProtocolError
    any other USBError                -> DeviceOperationError (errno name only)

Messages never include pyusb's own text, which can name paths or devices we do not control.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import usb.core
import usb.util

from drivers.base import DeviceInfo
from drivers.errors import (
    DeviceDisconnected,
    DeviceInitError,
    DeviceOperationError,
    DeviceTimeout,
    DriverUnavailable,
    OptionError,
    ProtocolError,
)

MAX_STALL_RECOVERIES = 2
MS_PER_S = 1000
# libusb treats a 0 ms timeout as "wait forever": never pass it.
MIN_TIMEOUT_MS = 1
# A device's own strings (product, serial) go into logs and health: bounded, printable only.
MAX_DESCRIPTOR_TEXT = 64
NOT_PRINTABLE = "?"  # stands in for a control character (newline, escape...) in such a string

T = TypeVar("T")


MAX_USB_ID = 0xFFFF  # vendor and product ids are 16-bit


@dataclass(frozen=True)
class UsbSelector:
    """Which device to take: vendor/product id, optionally one serial number."""

    vendor_id: int
    product_id: int
    serial_number: str | None = None
    interface: int = 0

    def __post_init__(self) -> None:
        """Checked where every USB driver builds one: a config error names the option."""
        for name in ("vendor_id", "product_id"):
            if not 0 <= getattr(self, name) <= MAX_USB_ID:
                raise OptionError(name, f"must be a USB id, 0 to 0x{MAX_USB_ID:04x}")
        if self.interface < 0:
            raise OptionError("interface", "must be >= 0")

    def describe(self) -> str:
        serial = f" serial {self.serial_number}" if self.serial_number else ""
        return f"{self.vendor_id:04x}:{self.product_id:04x}{serial}"


@dataclass(frozen=True)
class LinkSpec:
    """What the driver needs of the interface: endpoint type, the OUT endpoint or not, the
    largest IN transfer, and the device's name for error messages ("palm scanner")."""

    device_name: str
    transfer_type: int = usb.util.ENDPOINT_TYPE_BULK
    needs_out: bool = True
    read_size: int = 64
    #: Re-attach a kernel driver we detached when the link closes. A card reader's is not:
    #: once the daemon lets go, a keyboard-mode reader must not type swipes into a window.
    give_back_kernel_driver: bool = True


class _Stalled(Exception):
    """An endpoint answered STALL (EPIPE): recoverable by clearing the halt."""


def _errno_name(error: usb.core.USBError) -> str:
    code = error.errno
    return errno.errorcode.get(code, str(code)) if code is not None else "unknown"


@contextlib.contextmanager
def _mapped(operation: str, device_name: str) -> Iterator[None]:
    """Map pyusb errors (except timeouts, which callers handle) to `drivers.errors`."""
    try:
        yield
    except usb.core.USBTimeoutError:
        raise
    except usb.core.USBError as error:
        if error.errno == errno.ENODEV:
            raise DeviceDisconnected(f"{device_name} disconnected during {operation}") from None
        if error.errno == errno.EPIPE:
            raise _Stalled(operation) from None
        raise DeviceOperationError(f"USB {operation} failed ({_errno_name(error)})") from None


def descriptor_text(text: str) -> str:
    """A device's string made safe for logs and health: no character that could forge a log
    line or drive a terminal (each becomes `NOT_PRINTABLE`), at most `MAX_DESCRIPTOR_TEXT`."""
    return "".join(c if c.isprintable() else NOT_PRINTABLE for c in text[:MAX_DESCRIPTOR_TEXT])


def _timeout_ms(timeout_s: float) -> int:
    return max(MIN_TIMEOUT_MS, round(timeout_s * MS_PER_S))


def _is_endpoint(direction: int, transfer_type: int) -> Callable[[Any], bool]:
    def match(endpoint: Any) -> bool:
        return bool(
            usb.util.endpoint_direction(endpoint.bEndpointAddress) == direction
            and usb.util.endpoint_type(endpoint.bmAttributes) == transfer_type
        )

    return match


def _matches_serial(wanted: str) -> Callable[[Any], bool]:
    def match(device: Any) -> bool:
        try:
            return bool(device.serial_number == wanted)
        except (usb.core.USBError, ValueError):  # no permission, no string descriptors
            return False
        finally:
            # Reading the serial opened the device: do not keep other units' handles open.
            usb.util.dispose_resources(device)

    return match


class UsbLink:
    """A found, configured and claimed device. Use `UsbLink.connect`; `close()` disposes."""

    def __init__(self, device: Any, selector: UsbSelector, spec: LinkSpec) -> None:
        self._device = device
        self._selector = selector
        self._spec = spec
        self._name = spec.device_name
        self._detached_kernel_driver = False
        self._ep_out: Any = None
        self._ep_in: Any = None
        self._class_descriptors = b""

    @classmethod
    def connect(cls, backend: Any, selector: UsbSelector, spec: LinkSpec) -> UsbLink:
        """Find, configure and claim. `DeviceInitError` if absent, `DeviceError` on failure.

        `backend` None is pyusb's default (libusb-1.0, else libusb-0.1 or openusb)."""
        custom = _matches_serial(selector.serial_number) if selector.serial_number else None
        try:
            with _mapped("enumeration", spec.device_name):
                device = usb.core.find(
                    backend=backend,
                    idVendor=selector.vendor_id,
                    idProduct=selector.product_id,
                    custom_match=custom,
                )
        except usb.core.NoBackendError:
            raise DriverUnavailable(
                f"the {spec.device_name} driver needs libusb-1.0, which was not found"
            ) from None
        if device is None:
            raise DeviceInitError(f"no {spec.device_name} {selector.describe()} found on USB")
        link = cls(device, selector, spec)
        try:
            link._claim()
        except BaseException:
            link.close()
            raise
        return link

    @property
    def location(self) -> str:
        """`usb:<bus>-<address>`: where the device sits now (changes after a replug)."""
        return f"usb:{self._device.bus}-{self._device.address}"

    @property
    def class_descriptors(self) -> bytes:
        """The class-specific descriptors after the claimed interface's (HID: its HID
        descriptor, which declares the report descriptor's length)."""
        return self._class_descriptors

    @property
    def detached_kernel_driver(self) -> bool:
        return self._detached_kernel_driver

    def device_info(self, driver: str) -> DeviceInfo:
        """Who the device says it is in its descriptors: product string as the model,
        bcdDevice as the firmware release, the serial number string (empty if none); both
        strings printable and bounded (`descriptor_text`): they reach logs and health."""
        with _mapped("string descriptors", self._name):
            try:
                model = self._device.product or ""
                serial = self._device.serial_number or ""
            except ValueError:  # no string descriptors (langid) at all
                model = serial = ""
        return DeviceInfo(
            model=descriptor_text(model),
            firmware=_bcd_release(self._device.bcdDevice),
            serial_number=descriptor_text(serial),
            driver=driver,
            port=self.location,
        )

    def _claim(self) -> None:
        number = self._selector.interface
        try:
            with _mapped("claim", self._name):
                # A kernel driver bound to the interface makes set_configuration and claim
                # fail with EBUSY; only Linux reports it (elsewhere: NotImplementedError).
                with contextlib.suppress(NotImplementedError):
                    if self._device.is_kernel_driver_active(number):
                        self._device.detach_kernel_driver(number)
                        self._detached_kernel_driver = True
                if self._active_configuration() is None:
                    self._device.set_configuration()
                usb.util.claim_interface(self._device, number)
                interface = self._device.get_active_configuration()[(number, 0)]
        except _Stalled:
            raise DeviceInitError(f"{self._name} refused its configuration (stall)") from None
        except DeviceOperationError as error:
            raise DeviceInitError(f"cannot claim the {self._name}: {error}") from None
        self._class_descriptors = bytes(interface.extra_descriptors)
        kind = self._spec.transfer_type
        self._ep_out = usb.util.find_descriptor(
            interface, custom_match=_is_endpoint(usb.util.ENDPOINT_OUT, kind)
        )
        self._ep_in = usb.util.find_descriptor(
            interface, custom_match=_is_endpoint(usb.util.ENDPOINT_IN, kind)
        )
        if self._ep_in is None or (self._spec.needs_out and self._ep_out is None):
            raise DeviceInitError(f"{self._name} interface lacks the endpoints it needs")

    def _active_configuration(self) -> Any:
        """The active configuration, or None while the device is unconfigured.

        Setting a configuration that is already active resets the device's state on some
        hosts, so it is only set when needed.
        """
        try:
            return self._device.get_active_configuration()
        except usb.core.USBError as error:
            if error.errno == errno.ENODEV:
                raise
            return None

    def _with_stall_recovery(self, endpoint: Any, operation: str, action: Callable[[], T]) -> T:
        for _ in range(MAX_STALL_RECOVERIES + 1):
            try:
                with _mapped(operation, self._name):
                    return action()
            except _Stalled:
                with contextlib.suppress(_Stalled), _mapped("clear halt", self._name):
                    self._device.clear_halt(endpoint)
        raise ProtocolError(f"{self._name} endpoint kept stalling during {operation}")

    def write(self, frame: bytes, timeout_s: float) -> None:
        """Send one frame. `DeviceTimeout` if the device does not take it in time."""

        def send() -> int:
            written: int = self._device.write(self._ep_out, frame, _timeout_ms(timeout_s))
            return written

        try:
            written = self._with_stall_recovery(self._ep_out, "write", send)
        except usb.core.USBTimeoutError:
            raise DeviceTimeout(f"{self._name} did not accept a command in time") from None
        if written != len(frame):
            raise DeviceOperationError(f"short USB write ({written} of {len(frame)} bytes)")

    def read(self, timeout_s: float) -> bytes | None:
        """One IN transfer (a frame, a report), or None when nothing arrived in time."""

        def receive() -> bytes:
            data = self._device.read(self._ep_in, self._spec.read_size, _timeout_ms(timeout_s))
            return bytes(data)

        try:
            return self._with_stall_recovery(self._ep_in, "read", receive)
        except usb.core.USBTimeoutError:
            return None

    def control_in(
        self, request_type: int, request: int, value: int, length: int, timeout_s: float
    ) -> bytes:
        """One control IN request addressed to the claimed interface (a class descriptor).

        `ProtocolError` if the device refuses it (stall), `DeviceTimeout` if it does not
        answer in time."""
        try:
            with _mapped("control request", self._name):
                data = self._device.ctrl_transfer(
                    request_type,
                    request,
                    value,
                    self._selector.interface,
                    length,
                    _timeout_ms(timeout_s),
                )
        except _Stalled:
            raise ProtocolError(f"{self._name} refused a control request (stall)") from None
        except usb.core.USBTimeoutError:
            raise DeviceTimeout(f"{self._name} did not answer a control request") from None
        return bytes(data)

    def close(self) -> None:
        """Release the interface, hand the kernel driver back (if the spec says so), free
        pyusb's handle.

        Never raises: after an unplug every one of these calls may fail with ENODEV.
        """
        with contextlib.suppress(usb.core.USBError, NotImplementedError):
            usb.util.release_interface(self._device, self._selector.interface)
        if self._detached_kernel_driver and self._spec.give_back_kernel_driver:
            with contextlib.suppress(usb.core.USBError, NotImplementedError):
                self._device.attach_kernel_driver(self._selector.interface)
        with contextlib.suppress(usb.core.USBError):
            usb.util.dispose_resources(self._device)


def _bcd_release(bcd: int) -> str:
    """bcdDevice 0x0123 -> "1.23" (binary-coded decimal major.minor, as lsusb shows it)."""
    return f"{bcd >> 8:x}.{bcd & 0xFF:02x}"
