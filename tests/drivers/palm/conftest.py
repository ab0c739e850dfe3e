"""Palm-scanner fixtures: a simulated scanner with fast timings, and the rig that runs the
shared suite against the simulator and (when one is plugged in) real hardware.

Hardware: set POSD_PALM_VENDOR_ID / POSD_PALM_PRODUCT_ID (hex, e.g. 1d6b) and optionally
POSD_PALM_SERIAL; the hardware rig is skipped when they are unset, libusb is missing or no
such device is found. Tests that need a palm presented run on the simulator only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from drivers.errors import DeviceInitError, DriverUnavailable
from drivers.palm.amazon_one import AmazonOneScanner
from drivers.palm.scanner import PalmScanner
from drivers.palm.sim_device import SimulatedPalmDevice
from drivers.palm.simulated import SimulatedPalmScanner

ALICE = "alice"
ALICE_TOKEN = "tok-7f3a9c2e51d04b8a"
BOB = "bob"
BOB_BADGE = "badge-000417"
# Fast but not flaky on 2 busy cores: commands answer in microseconds in the simulator.
FAST = {"response_timeout_s": 0.3, "backoff_initial_s": 0.05, "backoff_max_s": 0.2}


def make_simulated(**options: object) -> SimulatedPalmScanner:
    merged: dict[str, object] = {"identities": {ALICE: ALICE_TOKEN, BOB: BOB_BADGE}, **FAST}
    merged.update(options)
    return SimulatedPalmScanner(**merged)  # type: ignore[arg-type]


@pytest.fixture
def sim_scanner() -> Iterator[SimulatedPalmScanner]:
    with make_simulated() as scanner:
        yield scanner


@pytest.fixture
def sim_device(sim_scanner: SimulatedPalmScanner) -> SimulatedPalmDevice:
    return sim_scanner.simulator.device


@dataclass
class PalmRig:
    """A scanner under test plus what only a simulator can do (present a palm)."""

    scanner: PalmScanner
    device: SimulatedPalmDevice | None

    def present(self, palm_id: str) -> None:
        if self.device is None:
            pytest.skip("needs a palm presented at the real device")
        self.device.present_palm(palm_id)


def _hardware_scanner() -> AmazonOneScanner:
    vendor = os.environ.get("POSD_PALM_VENDOR_ID")
    product = os.environ.get("POSD_PALM_PRODUCT_ID")
    if not (vendor and product):
        pytest.skip("no palm scanner configured (POSD_PALM_VENDOR_ID/POSD_PALM_PRODUCT_ID)")
    scanner = AmazonOneScanner(
        int(vendor, 16), int(product, 16), serial_number=os.environ.get("POSD_PALM_SERIAL")
    )
    try:
        scanner.open()
    except (DriverUnavailable, DeviceInitError) as error:
        pytest.skip(f"no real palm scanner: {error}")
    return scanner


@pytest.fixture(
    params=[
        pytest.param("simulated"),
        pytest.param("hardware", marks=pytest.mark.hardware),
    ]
)
def rig(request: pytest.FixtureRequest) -> Iterator[PalmRig]:
    if request.param == "simulated":
        simulated = make_simulated()
        simulated.open()
        under_test = PalmRig(simulated, simulated.simulator.device)
    else:
        under_test = PalmRig(_hardware_scanner(), None)
    try:
        yield under_test
    finally:
        under_test.scanner.close()
