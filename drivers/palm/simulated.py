"""The `simulated` palm-scanner driver: the `amazon-one` driver on a simulated USB bus.

A peer of the real driver, selected by `driver = "simulated"` in config: the very same driver
code (find, claim, bulk frames, errors, reconnect) runs, only `usb.core.find` is given
`SimulatedPalmBackend` instead of libusb. Tests reach the device through `.simulator` (the
backend: unplug, replug, stall) and `.simulator.device` (enrol, present palms, faults).

Options (config `[devices.palm_scanner]`)::

    identities = { alice = "tok-7f3a9c2e51d04b8a" }  # palm label -> credential (token/badge id)
    present = "alice"          # a palm held over the sensor at every identify (default none)
    confidence = 0.99          # match confidence reported, 0..1 (else OptionError)
    scan_time_s = 0.05         # time from palm to result
    serial_number = "SIM-PALM-0001"
    firmware = "sim-1.0.0"
    kernel_driver_active = false   # start with a kernel driver bound (the driver detaches it)
    unplugged_while = "/path/to/flag"  # unplugged while a file exists there (for tests that
                                       # run the driver in another process, e.g. a daemon)
    response_timeout_s, backoff_initial_s, backoff_max_s   # as for amazon-one
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from drivers.base import DEFAULT_BACKOFF_INITIAL_S, DEFAULT_BACKOFF_MAX_S
from drivers.errors import OptionError
from drivers.palm.amazon_one import DEFAULT_RESPONSE_TIMEOUT_S, AmazonOneScanner
from drivers.palm.protocol import MAX_CONFIDENCE_BP
from drivers.palm.sim_backend import SIM_PRODUCT_ID, SIM_VENDOR_ID, SimulatedPalmBackend
from drivers.palm.sim_device import (
    DEFAULT_CONFIDENCE_BP,
    DEFAULT_SCAN_TIME_S,
    SIM_FIRMWARE,
    SIM_SERIAL,
    SimulatedPalmDevice,
)
from drivers.usb.cable import follow_flag


class SimulatedPalmScanner(AmazonOneScanner):
    driver_name: ClassVar[str] = "simulated"

    def __init__(
        self,
        identities: Mapping[str, str] | None = None,
        present: str | None = None,
        confidence: float = DEFAULT_CONFIDENCE_BP / MAX_CONFIDENCE_BP,
        scan_time_s: float = DEFAULT_SCAN_TIME_S,
        serial_number: str = SIM_SERIAL,
        firmware: str = SIM_FIRMWARE,
        kernel_driver_active: bool = False,
        unplugged_while: str | None = None,
        response_timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S,
        backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
    ) -> None:
        if not 0.0 <= confidence <= 1.0:
            raise OptionError("confidence", "must be between 0 and 1")
        device = SimulatedPalmDevice(
            firmware=firmware,
            serial_number=serial_number,
            scan_time_s=scan_time_s,
            confidence_bp=round(confidence * MAX_CONFIDENCE_BP),
        )
        for palm_id, credential in (identities or {}).items():
            device.enroll(palm_id, credential)
        device.hold_palm(present)
        #: The simulated bus (and, as `.simulator.device`, the device's firmware).
        self.simulator = SimulatedPalmBackend(
            device, SIM_VENDOR_ID, SIM_PRODUCT_ID, kernel_driver_active=kernel_driver_active
        )
        follow_flag(unplugged_while, self.simulator, "palm")
        # Selecting by serial number makes every connect read string descriptors too.
        super().__init__(
            vendor_id=SIM_VENDOR_ID,
            product_id=SIM_PRODUCT_ID,
            serial_number=serial_number,
            response_timeout_s=response_timeout_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )

    def _usb_backend(self) -> SimulatedPalmBackend:
        return self.simulator
