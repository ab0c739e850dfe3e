"""A simulated USB HID device (a card reader's face on the bus): input reports on demand.

The interface is class 3 (HID) with the boot subclass/protocol it is given (a keyboard
reader: 1/1), one interrupt IN endpoint, and the HID class descriptor; the report descriptor
comes over GET_DESCRIPTOR (type 0x22) like a real device's. `send(reports)` queues input
reports, which the host reads one per interrupt IN transfer.

At plug-in the kernel's HID driver binds to the interface, as usbhid does. While it is bound,
it is the kernel, not our driver, that reads the reports: they are typed into whatever window
has the focus, and are recorded in `typed_into_desktop` (which must stay empty when the driver
did its job of detaching the kernel driver). Reports queued when the kernel takes the
interface back go the same way. Pulling the cable loses what was queued.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from drivers.usb.hid import (
    BOOT_SUBCLASS,
    GET_DESCRIPTOR,
    HID_CLASS,
    HID_DESCRIPTOR,
    KEYBOARD_PROTOCOL,
    REPORT_DESCRIPTOR,
    STANDARD_INTERFACE_IN,
)
from drivers.usb.sim_backend import (
    INTERFACE_NUMBER,
    INTERRUPT,
    EndpointDescriptor,
    FunctionLayout,
    PoweredOff,
    SimulatedFunction,
    SimulatedUsbBackend,
    Stall,
    UsbIdentity,
)

HID_DESCRIPTOR_LENGTH = 9
BCD_HID_1_11 = 0x0111
CLASS_INTERFACE_OUT = 0x21
SET_IDLE, SET_PROTOCOL = 0x0A, 0x0B
EP_IN = 0x81
DEFAULT_REPORT_SIZE = 8
DEFAULT_POLL_INTERVAL_MS = 10


def hid_class_descriptor(report_descriptor_length: int) -> bytes:
    """The HID descriptor that follows the interface descriptor (HID 1.11, 6.2.1)."""
    return bytes(
        [
            HID_DESCRIPTOR_LENGTH,
            HID_DESCRIPTOR,
            *BCD_HID_1_11.to_bytes(2, "little"),
            0,  # country code: not localised
            1,  # one class descriptor follows: the report descriptor
            REPORT_DESCRIPTOR,
            *report_descriptor_length.to_bytes(2, "little"),
        ]
    )


class SimulatedHidFunction(SimulatedFunction):
    """A HID device's descriptors and input-report queue. Thread-safe."""

    def __init__(
        self,
        identity: UsbIdentity,
        report_descriptor: bytes,
        subclass: int = BOOT_SUBCLASS,
        protocol: int = KEYBOARD_PROTOCOL,
        report_size: int = DEFAULT_REPORT_SIZE,
        declared_length: int | None = None,
    ) -> None:
        """`declared_length`: what the HID descriptor says the report descriptor's length
        is (default: its length); shorter makes a device that sends more than it declares."""
        self._identity = identity
        self.report_descriptor = report_descriptor
        declared = len(report_descriptor) if declared_length is None else declared_length
        self._layout = FunctionLayout(
            interface_class=HID_CLASS,
            subclass=subclass,
            protocol=protocol,
            endpoints=(
                EndpointDescriptor(EP_IN, INTERRUPT, report_size, DEFAULT_POLL_INTERVAL_MS),
            ),
            class_descriptors=hid_class_descriptor(declared),
        )
        self._cond = threading.Condition()
        self._queue: deque[bytes] = deque()
        self._powered = True
        self._kernel_bound = False
        #: Reports the kernel's HID driver read (typed into the desktop). Must stay empty.
        self.typed_into_desktop: list[bytes] = []
        #: Reports the host read through the interrupt endpoint (for tests).
        self.reports_read = 0

    @property
    def identity(self) -> UsbIdentity:
        return self._identity

    @property
    def layout(self) -> FunctionLayout:
        return self._layout

    # -- the device's side: reports to send -------------------------------------------------

    def send(self, reports: Iterable[bytes]) -> None:
        """Queue input reports (a swipe's). Lost if the cable is out; typed into the desktop
        if the kernel driver holds the interface."""
        with self._cond:
            if not self._powered:
                return
            if self._kernel_bound:
                self.typed_into_desktop.extend(reports)
                return
            self._queue.extend(reports)
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Reports queued and not read yet."""
        with self._cond:
            return len(self._queue)

    # -- the bus's side --------------------------------------------------------------------

    def power_off(self) -> None:
        with self._cond:
            self._powered = False
            self._queue.clear()
            self._cond.notify_all()

    def power_on(self) -> None:
        with self._cond:
            self._powered = True

    def kernel_driver_bound(self, bound: bool) -> None:
        with self._cond:
            self._kernel_bound = bound
            if bound:
                self.typed_into_desktop.extend(self._queue)
                self._queue.clear()

    def transmit(self, endpoint: int, timeout_s: float | None) -> bytes | None:
        if endpoint != EP_IN:
            raise Stall(endpoint)
        with self._cond:
            ready = self._cond.wait_for(lambda: self._queue or not self._powered, timeout_s)
            if not self._powered:
                raise PoweredOff
            if not ready:
                return None
            self.reports_read += 1
            return self._queue.popleft()

    def control(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> bytes:
        """GET_DESCRIPTOR(report); SET_IDLE and SET_PROTOCOL are taken; the rest STALLs."""
        if index != INTERFACE_NUMBER:
            raise Stall(request)
        if (request_type, request, value >> 8) == (
            STANDARD_INTERFACE_IN,
            GET_DESCRIPTOR,
            REPORT_DESCRIPTOR,
        ):
            return self.report_descriptor
        if request_type == CLASS_INTERFACE_OUT and request in (SET_IDLE, SET_PROTOCOL):
            return b""
        raise Stall(request)


class SimulatedHidBackend(SimulatedUsbBackend):
    """A virtual bus with one simulated HID device, its kernel driver bound at plug-in."""

    def __init__(self, function: SimulatedHidFunction) -> None:
        super().__init__(function, kernel_driver_active=True)
        self.hid = function

    def send(self, reports: Iterable[bytes]) -> None:
        """The device sends these input reports (see `SimulatedHidFunction.send`)."""
        self.hid.send(reports)

    @property
    def typed_into_desktop(self) -> list[bytes]:
        return self.hid.typed_into_desktop
