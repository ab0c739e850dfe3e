"""A pyusb backend (`usb.backend.IBackend`) with one simulated USB device on its bus.

`usb.core.find(backend=SimulatedUsbBackend(...))` enumerates it, reads its descriptors
(device, configuration, interface, endpoints, string descriptors over control transfers),
configures it, claims its interface and does bulk and interrupt transfers exactly as it would
through libusb, so a driver's code runs unchanged against it. The technique is the one
pyftdi's test `VirtBackend` uses. No libusb is loaded or needed.

USB-level behaviour and faults live here; what the device does with its endpoints is a
`SimulatedFunction` (the palm scanner's firmware, a HID card reader). Errors are the very
`usb.core.USBError`/`USBTimeoutError` values libusb1's backend raises (same errno): ENODEV
after `unplug()` and on handles from before a `replug()` (which also moves the device to a new
address), EPIPE while an endpoint is halted by `stall()` or for a request the function refuses,
EBUSY when claiming an interface a kernel driver holds or another handle claimed.
"""

from __future__ import annotations

import errno
import threading
from abc import ABC, abstractmethod
from array import array
from dataclasses import dataclass, field
from typing import Any

import usb.backend
import usb.core

SIM_BUS = 1
SIM_FIRST_ADDRESS = 4
INTERFACE_NUMBER = 0
CONFIGURATION_VALUE = 1
HIGH_SPEED = 3
USB_2_0 = 0x0200
LANGID_EN_US = 0x0409
DESC_DEVICE, DESC_CONFIG, DESC_STRING, DESC_INTERFACE, DESC_ENDPOINT = 1, 2, 3, 4, 5
DEVICE_DESCRIPTOR_LENGTH = 18
CONFIG_DESCRIPTOR_LENGTH = 9
INTERFACE_DESCRIPTOR_LENGTH = 9
ENDPOINT_DESCRIPTOR_LENGTH = 7
GET_DESCRIPTOR = 0x06
STANDARD_DEVICE_IN = 0x80
MANUFACTURER_INDEX, PRODUCT_INDEX, SERIAL_INDEX = 1, 2, 3
BULK = 0x02
INTERRUPT = 0x03
MS_PER_S = 1000

# libusb error codes, as libusb1's backend reports them alongside the errno.
LIBUSB_ERROR_ACCESS = -3
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_NOT_FOUND = -5
LIBUSB_ERROR_BUSY = -6
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_OVERFLOW = -8
LIBUSB_ERROR_PIPE = -9


class PoweredOff(Exception):
    """The simulated device has no power (it was unplugged)."""


class Stall(Exception):
    """The function refuses a request or a transfer: the host sees a STALL (EPIPE)."""


def _usb_error(code: int, number: int, text: str) -> usb.core.USBError:
    return usb.core.USBError(text, code, number)


def _no_device() -> usb.core.USBError:
    return _usb_error(
        LIBUSB_ERROR_NO_DEVICE, errno.ENODEV, "No such device (it may have been disconnected)"
    )


def _pipe() -> usb.core.USBError:
    return _usb_error(LIBUSB_ERROR_PIPE, errno.EPIPE, "Pipe error")


def _timed_out() -> usb.core.USBTimeoutError:
    return usb.core.USBTimeoutError("Operation timed out", LIBUSB_ERROR_TIMEOUT, errno.ETIMEDOUT)


@dataclass(frozen=True)
class _DeviceId:
    """What `enumerate_devices` yields: one plug-in of the device (a replug is a new one)."""

    generation: int


@dataclass(frozen=True)
class _Handle:
    generation: int


@dataclass(frozen=True)
class EndpointDescriptor:
    bEndpointAddress: int
    bmAttributes: int = BULK
    wMaxPacketSize: int = 64
    bInterval: int = 0
    bLength: int = ENDPOINT_DESCRIPTOR_LENGTH
    bDescriptorType: int = DESC_ENDPOINT
    bRefresh: int = 0
    bSynchAddress: int = 0
    extra_descriptors: bytes = b""


@dataclass(frozen=True)
class InterfaceDescriptor:
    bInterfaceClass: int
    bInterfaceSubClass: int = 0
    bInterfaceProtocol: int = 0
    bNumEndpoints: int = 0
    extra_descriptors: bytes = b""
    bLength: int = INTERFACE_DESCRIPTOR_LENGTH
    bDescriptorType: int = DESC_INTERFACE
    bInterfaceNumber: int = INTERFACE_NUMBER
    bAlternateSetting: int = 0
    iInterface: int = 0


@dataclass(frozen=True)
class _ConfigurationDescriptor:
    wTotalLength: int
    bLength: int = CONFIG_DESCRIPTOR_LENGTH
    bDescriptorType: int = DESC_CONFIG
    bNumInterfaces: int = 1
    bConfigurationValue: int = CONFIGURATION_VALUE
    iConfiguration: int = 0
    bmAttributes: int = 0x80
    bMaxPower: int = 250
    extra_descriptors: bytes = b""


@dataclass(frozen=True)
class _DeviceDescriptor:
    idVendor: int
    idProduct: int
    address: int
    bcdDevice: int
    bLength: int = DEVICE_DESCRIPTOR_LENGTH
    bDescriptorType: int = DESC_DEVICE
    bcdUSB: int = USB_2_0
    bDeviceClass: int = 0
    bDeviceSubClass: int = 0
    bDeviceProtocol: int = 0
    bMaxPacketSize0: int = 64
    iManufacturer: int = MANUFACTURER_INDEX
    iProduct: int = PRODUCT_INDEX
    iSerialNumber: int = SERIAL_INDEX
    bNumConfigurations: int = 1
    bus: int = SIM_BUS
    port_number: int = 1
    port_numbers: tuple[int, ...] = (1,)
    speed: int = HIGH_SPEED


@dataclass(frozen=True)
class UsbIdentity:
    """What the device descriptor and its string descriptors say."""

    vendor_id: int
    product_id: int
    manufacturer: str
    product: str
    serial_number: str
    bcd_device: int = 0x0100


@dataclass(frozen=True)
class FunctionLayout:
    """The device's one interface: class, subclass, protocol, endpoints, class descriptors."""

    interface_class: int
    endpoints: tuple[EndpointDescriptor, ...]
    subclass: int = 0
    protocol: int = 0
    class_descriptors: bytes = b""
    interface: InterfaceDescriptor = field(init=False)

    def __post_init__(self) -> None:
        descriptor = InterfaceDescriptor(
            bInterfaceClass=self.interface_class,
            bInterfaceSubClass=self.subclass,
            bInterfaceProtocol=self.protocol,
            bNumEndpoints=len(self.endpoints),
            extra_descriptors=self.class_descriptors,
        )
        object.__setattr__(self, "interface", descriptor)

    def total_length(self) -> int:
        return (
            CONFIG_DESCRIPTOR_LENGTH
            + INTERFACE_DESCRIPTOR_LENGTH
            + len(self.class_descriptors)
            + ENDPOINT_DESCRIPTOR_LENGTH * len(self.endpoints)
        )


class SimulatedFunction(ABC):
    """The device behind the simulated bus: its descriptors and what its endpoints carry.

    Called from the driver's thread through the backend; implementations are thread-safe.
    `PoweredOff` from a transfer is reported as ENODEV, `Stall` as EPIPE.
    """

    @property
    @abstractmethod
    def identity(self) -> UsbIdentity: ...

    @property
    @abstractmethod
    def layout(self) -> FunctionLayout: ...

    @abstractmethod
    def power_off(self) -> None: ...

    @abstractmethod
    def power_on(self) -> None: ...

    def receive(self, endpoint: int, data: bytes) -> None:
        """An OUT transfer's data."""
        raise Stall(endpoint)

    def transmit(self, endpoint: int, timeout_s: float | None) -> bytes | None:
        """The next IN transfer's data, waiting up to `timeout_s` (None: forever); None if
        nothing came."""
        raise Stall(endpoint)

    def control(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> bytes:
        """A control request other than the standard string descriptors (class requests,
        interface descriptors): the IN data, or b"" for an OUT request taken."""
        raise Stall(request)

    def kernel_driver_bound(self, bound: bool) -> None:
        """The host's kernel driver took (True) or released (False) the interface."""
        return None


class SimulatedUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    """One simulated device on a virtual bus. Thread-safe."""

    def __init__(self, function: SimulatedFunction, kernel_driver_active: bool = False) -> None:
        super().__init__()
        self.function = function
        self._kernel_driver_at_plug = kernel_driver_active
        self._lock = threading.Lock()
        self._claimed_changed = threading.Condition(self._lock)
        self._plugged = True
        self._generation = 0
        self._configuration = 0
        self._kernel_driver_active = kernel_driver_active
        self._claimed: dict[int, _Handle] = {}
        self._pending_stalls: dict[int, int] = {}
        self._halted: set[int] = set()
        #: Counters for tests.
        self.kernel_driver_detaches = 0
        self.open_handles = 0
        function.kernel_driver_bound(kernel_driver_active)

    # -- the test's hands: plug, unplug, stall ---------------------------------------------

    @property
    def plugged(self) -> bool:
        return self._plugged

    def unplug(self) -> None:
        """Pull the cable: the device vanishes from the bus, every handle goes dead."""
        with self._lock:
            self._plugged = False
            self._claimed.clear()
            self._claimed_changed.notify_all()
        self.function.power_off()

    def replug(self) -> None:
        """Plug it back: a fresh enumeration at a new address, unconfigured, kernel driver
        bound again if it was at first."""
        with self._lock:
            self._generation += 1
            self._plugged = True
            self._configuration = 0
            self._kernel_driver_active = self._kernel_driver_at_plug
            self._claimed.clear()
            self._pending_stalls.clear()
            self._halted.clear()
        self.function.power_on()
        self.function.kernel_driver_bound(self._kernel_driver_at_plug)

    def kernel_driver_bound(self) -> bool:
        """Whether a (simulated) kernel driver holds the interface right now."""
        return self._kernel_driver_active

    def stall(self, endpoint: int, count: int = 1) -> None:
        """Halt `endpoint` on each of its next `count` transfers (EPIPE until cleared)."""
        with self._lock:
            self._pending_stalls[endpoint] = self._pending_stalls.get(endpoint, 0) + count

    def wait_claimed(self, timeout_s: float) -> bool:
        """Wait until a host has claimed the interface (e.g. reconnected after a replug)."""
        with self._claimed_changed:
            return self._claimed_changed.wait_for(lambda: bool(self._claimed), timeout_s)

    # -- enumeration and descriptors -------------------------------------------------------

    def enumerate_devices(self) -> Any:
        with self._lock:
            present = [_DeviceId(self._generation)] if self._plugged else []
        return iter(present)

    def get_parent(self, dev: Any) -> None:
        return None

    def get_device_descriptor(self, dev: _DeviceId) -> _DeviceDescriptor:
        identity = self.function.identity
        return _DeviceDescriptor(
            idVendor=identity.vendor_id,
            idProduct=identity.product_id,
            address=SIM_FIRST_ADDRESS + dev.generation,
            bcdDevice=identity.bcd_device,
        )

    def get_configuration_descriptor(self, dev: Any, config: int) -> _ConfigurationDescriptor:
        if config != 0:
            raise IndexError("configuration index out of range")
        return _ConfigurationDescriptor(wTotalLength=self.function.layout.total_length())

    def get_interface_descriptor(
        self, dev: Any, intf: int, alt: int, config: int
    ) -> InterfaceDescriptor:
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError("interface index out of range")
        return self.function.layout.interface

    def get_endpoint_descriptor(
        self, dev: Any, ep: int, intf: int, alt: int, config: int
    ) -> EndpointDescriptor:
        endpoints = self.function.layout.endpoints
        if (intf, alt, config) != (0, 0, 0) or not 0 <= ep < len(endpoints):
            raise IndexError("endpoint index out of range")
        return endpoints[ep]

    # -- handles, configuration, interfaces ------------------------------------------------

    def _check_alive(self, generation: int) -> None:
        if not self._plugged or generation != self._generation:
            raise _no_device()

    def open_device(self, dev: _DeviceId) -> _Handle:
        with self._lock:
            self._check_alive(dev.generation)
            self.open_handles += 1
            return _Handle(dev.generation)

    def close_device(self, dev_handle: _Handle) -> None:
        with self._lock:
            self.open_handles -= 1

    def get_configuration(self, dev_handle: _Handle) -> int:
        with self._lock:
            self._check_alive(dev_handle.generation)
            return self._configuration

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            if self._kernel_driver_active:
                raise _usb_error(LIBUSB_ERROR_BUSY, errno.EBUSY, "Resource busy")
            self._configuration = config_value

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            if (intf, altsetting) != (INTERFACE_NUMBER, 0):
                raise _usb_error(LIBUSB_ERROR_NOT_FOUND, errno.ENOENT, "Entity not found")

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            owner = self._claimed.get(intf)
            if self._kernel_driver_active or (owner is not None and owner is not dev_handle):
                raise _usb_error(LIBUSB_ERROR_BUSY, errno.EBUSY, "Resource busy")
            self._claimed[intf] = dev_handle
            self._claimed_changed.notify_all()

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            if self._claimed.get(intf) is dev_handle:
                del self._claimed[intf]

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        with self._lock:
            self._check_alive(dev_handle.generation)
            return self._kernel_driver_active

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            self._kernel_driver_active = False
            self.kernel_driver_detaches += 1
        self.function.kernel_driver_bound(False)

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            self._kernel_driver_active = True
        self.function.kernel_driver_bound(True)

    # -- transfers -------------------------------------------------------------------------

    def _start_transfer(self, dev_handle: _Handle, ep: int, intf: int) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            if self._claimed.get(intf) is not dev_handle:
                raise _usb_error(LIBUSB_ERROR_ACCESS, errno.EACCES, "Access denied")
            if self._pending_stalls.get(ep, 0) > 0:
                self._pending_stalls[ep] -= 1
                self._halted.add(ep)
            if ep in self._halted:
                raise _pipe()

    def _write(self, dev_handle: _Handle, ep: int, intf: int, data: array[int]) -> int:
        self._start_transfer(dev_handle, ep, intf)
        try:
            self.function.receive(ep, data.tobytes())
        except PoweredOff:
            raise _no_device() from None
        except Stall:
            raise _pipe() from None
        return len(data)

    def _read(self, dev_handle: _Handle, ep: int, intf: int, buff: array[int], timeout: int) -> int:
        self._start_transfer(dev_handle, ep, intf)
        try:
            # libusb: a 0 ms timeout means no timeout at all.
            data = self.function.transmit(ep, timeout / MS_PER_S if timeout else None)
        except PoweredOff:
            raise _no_device() from None
        except Stall:
            raise _pipe() from None
        if data is None:
            raise _timed_out()
        if len(data) > len(buff):
            raise _usb_error(LIBUSB_ERROR_OVERFLOW, errno.EOVERFLOW, "Overflow")
        buff[: len(data)] = array("B", data)
        return len(data)

    def bulk_write(
        self, dev_handle: _Handle, ep: int, intf: int, data: array[int], timeout: int
    ) -> int:
        return self._write(dev_handle, ep, intf, data)

    def bulk_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array[int], timeout: int
    ) -> int:
        return self._read(dev_handle, ep, intf, buff, timeout)

    def intr_write(
        self, dev_handle: _Handle, ep: int, intf: int, data: array[int], timeout: int
    ) -> int:
        return self._write(dev_handle, ep, intf, data)

    def intr_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array[int], timeout: int
    ) -> int:
        return self._read(dev_handle, ep, intf, buff, timeout)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            self._halted.discard(ep)

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array[int],
        timeout: int,
    ) -> int:
        """Standard string descriptors here; anything else is the function's (or a STALL)."""
        with self._lock:
            self._check_alive(dev_handle.generation)
        kind, index = wValue >> 8, wValue & 0xFF
        if (bmRequestType, bRequest, kind) == (STANDARD_DEVICE_IN, GET_DESCRIPTOR, DESC_STRING):
            reply = self._string_descriptor(index)
        else:
            try:
                reply = self.function.control(
                    bmRequestType, bRequest, wValue, wIndex, data.tobytes()
                )
            except PoweredOff:
                raise _no_device() from None
            except Stall:
                raise _pipe() from None
            if not reply:
                return len(data)  # an OUT request taken whole
        reply = reply[: len(data)]
        data[: len(reply)] = array("B", reply)
        return len(reply)

    def _string_descriptor(self, index: int) -> bytes:
        identity = self.function.identity
        strings = {
            MANUFACTURER_INDEX: identity.manufacturer,
            PRODUCT_INDEX: identity.product,
            SERIAL_INDEX: identity.serial_number,
        }
        if index == 0:
            body = LANGID_EN_US.to_bytes(2, "little")
        elif index in strings:
            body = strings[index].encode("utf-16-le")
        else:
            raise _pipe()
        return bytes([2 + len(body), DESC_STRING]) + body

    def reset_device(self, dev_handle: _Handle) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            self._configuration = 0
            self._halted.clear()
