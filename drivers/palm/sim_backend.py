"""The simulated palm scanner on the simulated USB bus (`drivers.usb.sim_backend`).

The bus (enumeration, descriptors, claim, kernel driver, unplug/replug/stall) is shared with
the other simulated USB devices; this module only says what the palm scanner looks like on it
(a vendor-specific interface with a bulk OUT and a bulk IN endpoint) and hands the bulk
transfers to its firmware, `SimulatedPalmDevice`.
"""

from __future__ import annotations

from drivers.palm.protocol import MAX_FRAME_SIZE
from drivers.palm.sim_device import SimulatedPalmDevice
from drivers.usb.sim_backend import (
    BULK,
    EndpointDescriptor,
    FunctionLayout,
    SimulatedFunction,
    SimulatedUsbBackend,
    UsbIdentity,
)

SIM_VENDOR_ID = 0x1D6B
SIM_PRODUCT_ID = 0x0104
SIM_MANUFACTURER = "posd simulator"
SIM_PRODUCT = "Amazon One palm scanner (simulated)"
EP_OUT = 0x01
EP_IN = 0x81
VENDOR_SPECIFIC_CLASS = 0xFF

_LAYOUT = FunctionLayout(
    interface_class=VENDOR_SPECIFIC_CLASS,
    endpoints=(
        EndpointDescriptor(EP_OUT, BULK, MAX_FRAME_SIZE),
        EndpointDescriptor(EP_IN, BULK, MAX_FRAME_SIZE),
    ),
)


class _PalmFunction(SimulatedFunction):
    """The palm scanner's USB face: its descriptors, bulk OUT to `receive`, bulk IN from
    `transmit`."""

    def __init__(self, device: SimulatedPalmDevice, vendor_id: int, product_id: int) -> None:
        self.device = device
        self._identity = UsbIdentity(
            vendor_id, product_id, SIM_MANUFACTURER, SIM_PRODUCT, device.info.serial_number
        )

    @property
    def identity(self) -> UsbIdentity:
        return self._identity

    @property
    def layout(self) -> FunctionLayout:
        return _LAYOUT

    def power_off(self) -> None:
        self.device.power_off()

    def power_on(self) -> None:
        self.device.power_on()

    def receive(self, endpoint: int, data: bytes) -> None:
        self.device.receive(data)

    def transmit(self, endpoint: int, timeout_s: float | None) -> bytes | None:
        return self.device.transmit(timeout_s)


class SimulatedPalmBackend(SimulatedUsbBackend):
    """A virtual bus with one simulated palm scanner on it; `.device` is its firmware."""

    def __init__(
        self,
        device: SimulatedPalmDevice,
        vendor_id: int = SIM_VENDOR_ID,
        product_id: int = SIM_PRODUCT_ID,
        kernel_driver_active: bool = False,
    ) -> None:
        super().__init__(_PalmFunction(device, vendor_id, product_id), kernel_driver_active)
        self.device = device
