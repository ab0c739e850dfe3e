"""A pyusb backend (`usb.backend.IBackend`) with one simulated palm scanner on its bus.

`usb.core.find(backend=SimulatedUsbBackend(...))` enumerates it, reads its descriptors
(device, configuration, interface, endpoints, string descriptors over control transfers),
configures it, claims its interface and does bulk transfers exactly as it would through
libusb, so the `amazon-one` driver code runs unchanged against it. The technique is the one
pyftdi's test `VirtBackend` uses. No libusb is loaded or needed.

USB-level behaviour and faults live here (the device firmware is `SimulatedPalmDevice`):
errors are the very `usb.core.USBError`/`USBTimeoutError` values libusb1's backend raises
(same errno): ENODEV after `unplug()` and on handles from before a `replug()` (which also
moves the device to a new address), EPIPE while an endpoint is halted by `stall()`, EBUSY
when claiming an interface a kernel driver holds or another handle claimed.
"""

from __future__ import annotations

import errno
import threading
from array import array
from dataclasses import dataclass
from typing import Any

import usb.backend
import usb.core

from drivers.palm.protocol import MAX_FRAME_SIZE
from drivers.palm.sim_device import PoweredOff, SimulatedPalmDevice

SIM_VENDOR_ID = 0x1D6B
SIM_PRODUCT_ID = 0x0104
SIM_MANUFACTURER = "posd simulator"
SIM_PRODUCT = "Amazon One palm scanner (simulated)"
SIM_BUS = 1
SIM_FIRST_ADDRESS = 4
EP_OUT = 0x01
EP_IN = 0x81
INTERFACE_NUMBER = 0
CONFIGURATION_VALUE = 1
VENDOR_SPECIFIC_CLASS = 0xFF
BULK = 0x02
HIGH_SPEED = 3
USB_2_0 = 0x0200
LANGID_EN_US = 0x0409
DESC_DEVICE, DESC_CONFIG, DESC_STRING, DESC_INTERFACE, DESC_ENDPOINT = 1, 2, 3, 4, 5
GET_DESCRIPTOR = 0x06
STANDARD_DEVICE_IN = 0x80
STRING_INDEXES = {1: SIM_MANUFACTURER, 2: SIM_PRODUCT}
SERIAL_INDEX = 3
MS_PER_S = 1000

# libusb error codes, as libusb1's backend reports them alongside the errno.
LIBUSB_ERROR_ACCESS = -3
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_BUSY = -6
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_OVERFLOW = -8
LIBUSB_ERROR_PIPE = -9
LIBUSB_ERROR_NOT_FOUND = -5


def _usb_error(code: int, number: int, text: str) -> usb.core.USBError:
    return usb.core.USBError(text, code, number)


def _no_device() -> usb.core.USBError:
    return _usb_error(
        LIBUSB_ERROR_NO_DEVICE, errno.ENODEV, "No such device (it may have been disconnected)"
    )


def _pipe() -> usb.core.USBError:
    return _usb_error(LIBUSB_ERROR_PIPE, errno.EPIPE, "Pipe error")


@dataclass(frozen=True)
class _DeviceId:
    """What `enumerate_devices` yields: one plug-in of the device (a replug is a new one)."""

    generation: int


@dataclass(frozen=True)
class _Handle:
    generation: int


@dataclass(frozen=True)
class _DeviceDescriptor:
    idVendor: int
    idProduct: int
    address: int
    bcdDevice: int = 0x0100
    bLength: int = 18
    bDescriptorType: int = DESC_DEVICE
    bcdUSB: int = USB_2_0
    bDeviceClass: int = 0
    bDeviceSubClass: int = 0
    bDeviceProtocol: int = 0
    bMaxPacketSize0: int = 64
    iManufacturer: int = 1
    iProduct: int = 2
    iSerialNumber: int = SERIAL_INDEX
    bNumConfigurations: int = 1
    bus: int = SIM_BUS
    port_number: int = 1
    port_numbers: tuple[int, ...] = (1,)
    speed: int = HIGH_SPEED


@dataclass(frozen=True)
class _ConfigurationDescriptor:
    bLength: int = 9
    bDescriptorType: int = DESC_CONFIG
    wTotalLength: int = 9 + 9 + 7 + 7
    bNumInterfaces: int = 1
    bConfigurationValue: int = CONFIGURATION_VALUE
    iConfiguration: int = 0
    bmAttributes: int = 0x80
    bMaxPower: int = 250
    extra_descriptors: bytes = b""


@dataclass(frozen=True)
class _InterfaceDescriptor:
    bLength: int = 9
    bDescriptorType: int = DESC_INTERFACE
    bInterfaceNumber: int = INTERFACE_NUMBER
    bAlternateSetting: int = 0
    bNumEndpoints: int = 2
    bInterfaceClass: int = VENDOR_SPECIFIC_CLASS
    bInterfaceSubClass: int = 0
    bInterfaceProtocol: int = 0
    iInterface: int = 0
    extra_descriptors: bytes = b""


@dataclass(frozen=True)
class _EndpointDescriptor:
    bEndpointAddress: int
    bLength: int = 7
    bDescriptorType: int = DESC_ENDPOINT
    bmAttributes: int = BULK
    wMaxPacketSize: int = MAX_FRAME_SIZE
    bInterval: int = 0
    bRefresh: int = 0
    bSynchAddress: int = 0
    extra_descriptors: bytes = b""


_ENDPOINTS = (_EndpointDescriptor(EP_OUT), _EndpointDescriptor(EP_IN))


class SimulatedUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    """One simulated palm scanner on a virtual bus. Thread-safe."""

    def __init__(
        self,
        device: SimulatedPalmDevice,
        vendor_id: int = SIM_VENDOR_ID,
        product_id: int = SIM_PRODUCT_ID,
        kernel_driver_active: bool = False,
    ) -> None:
        super().__init__()
        self.device = device
        self._vendor_id = vendor_id
        self._product_id = product_id
        self._kernel_driver_at_plug = kernel_driver_active
        self._lock = threading.Lock()
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

    # -- the test's hands: plug, unplug, stall ---------------------------------------------

    @property
    def plugged(self) -> bool:
        return self._plugged

    def unplug(self) -> None:
        """Pull the cable: the device vanishes from the bus, every handle goes dead."""
        with self._lock:
            self._plugged = False
            self._claimed.clear()
        self.device.power_off()

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
        self.device.power_on()

    def kernel_driver_bound(self) -> bool:
        """Whether a (simulated) kernel driver holds the interface right now."""
        return self._kernel_driver_active

    def stall(self, endpoint: int, count: int = 1) -> None:
        """Halt `endpoint` on each of its next `count` transfers (EPIPE until cleared)."""
        with self._lock:
            self._pending_stalls[endpoint] = self._pending_stalls.get(endpoint, 0) + count

    # -- enumeration and descriptors -------------------------------------------------------

    def enumerate_devices(self) -> Any:
        with self._lock:
            present = [_DeviceId(self._generation)] if self._plugged else []
        return iter(present)

    def get_parent(self, dev: Any) -> None:
        return None

    def get_device_descriptor(self, dev: _DeviceId) -> _DeviceDescriptor:
        return _DeviceDescriptor(
            idVendor=self._vendor_id,
            idProduct=self._product_id,
            address=SIM_FIRST_ADDRESS + dev.generation,
        )

    def get_configuration_descriptor(self, dev: Any, config: int) -> _ConfigurationDescriptor:
        if config != 0:
            raise IndexError("configuration index out of range")
        return _ConfigurationDescriptor()

    def get_interface_descriptor(
        self, dev: Any, intf: int, alt: int, config: int
    ) -> _InterfaceDescriptor:
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError("interface index out of range")
        return _InterfaceDescriptor()

    def get_endpoint_descriptor(
        self, dev: Any, ep: int, intf: int, alt: int, config: int
    ) -> _EndpointDescriptor:
        if (intf, alt, config) != (0, 0, 0) or not 0 <= ep < len(_ENDPOINTS):
            raise IndexError("endpoint index out of range")
        return _ENDPOINTS[ep]

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

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            self._kernel_driver_active = True

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

    def bulk_write(
        self, dev_handle: _Handle, ep: int, intf: int, data: array[int], timeout: int
    ) -> int:
        self._start_transfer(dev_handle, ep, intf)
        try:
            self.device.receive(data.tobytes())
        except PoweredOff:
            raise _no_device() from None
        return len(data)

    def bulk_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array[int], timeout: int
    ) -> int:
        self._start_transfer(dev_handle, ep, intf)
        try:
            # libusb: a 0 ms timeout means no timeout at all.
            frame = self.device.transmit(timeout / MS_PER_S if timeout else None)
        except PoweredOff:
            raise _no_device() from None
        if frame is None:
            raise usb.core.USBTimeoutError(
                "Operation timed out", LIBUSB_ERROR_TIMEOUT, errno.ETIMEDOUT
            )
        if len(frame) > len(buff):
            raise _usb_error(LIBUSB_ERROR_OVERFLOW, errno.EOVERFLOW, "Overflow")
        buff[: len(frame)] = array("B", frame)
        return len(frame)

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
        """Standard GET_DESCRIPTOR(string) only; anything else STALLs, as devices do."""
        with self._lock:
            self._check_alive(dev_handle.generation)
        kind, index = wValue >> 8, wValue & 0xFF
        if (bmRequestType, bRequest, kind) != (STANDARD_DEVICE_IN, GET_DESCRIPTOR, DESC_STRING):
            raise _pipe()
        if index == 0:
            body = LANGID_EN_US.to_bytes(2, "little")
        elif index == SERIAL_INDEX:
            body = self.device.info.serial_number.encode("utf-16-le")
        elif index in STRING_INDEXES:
            body = STRING_INDEXES[index].encode("utf-16-le")
        else:
            raise _pipe()
        descriptor = (bytes([2 + len(body), DESC_STRING]) + body)[: len(data)]
        data[: len(descriptor)] = array("B", descriptor)
        return len(descriptor)

    def reset_device(self, dev_handle: _Handle) -> None:
        with self._lock:
            self._check_alive(dev_handle.generation)
            self._configuration = 0
            self._halted.clear()
