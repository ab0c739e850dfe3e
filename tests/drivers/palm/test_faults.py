"""Every fault the simulator injects, and the driver's recovery from it.

The faults travel the real path: the simulated device or bus raises what libusb would
(ETIMEDOUT, EPIPE, ENODEV, EBUSY, corrupt bytes) and the `amazon-one` driver code handles it.
"""

from __future__ import annotations

import threading
import time

import pytest
import usb.core
import usb.util

from drivers.errors import DeviceDisconnected, DeviceInitError, DeviceTimeout, ProtocolError
from drivers.outcomes import Cancelled, TimedOut
from drivers.palm.identity import Matched
from drivers.palm.protocol import MAX_RESENDS
from drivers.palm.sim_backend import EP_IN, EP_OUT
from drivers.palm.sim_device import SimulatedPalmDevice
from drivers.palm.simulated import SimulatedPalmScanner
from drivers.usb.sim_backend import INTERFACE_NUMBER
from tests.drivers.palm.conftest import ALICE, ALICE_TOKEN, make_simulated


def _match(scanner: SimulatedPalmScanner, timeout: float = 2.0) -> Matched:
    scanner.simulator.device.present_palm(ALICE)
    result = scanner.identify(timeout)
    assert isinstance(result, Matched)
    assert result.credential.reveal() == ALICE_TOKEN
    return result


def test_silent_device_is_a_device_timeout_then_recovers(
    sim_scanner: SimulatedPalmScanner, sim_device: SimulatedPalmDevice
) -> None:
    sim_device.drop_commands(1)
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match="did not answer IDENTIFY"):
        sim_scanner.identify(2.0)
    assert time.monotonic() - started < 1.0  # the response timeout, not the identify timeout
    assert (sim_scanner.health().last_error or "").startswith("device_timeout")
    _match(sim_scanner)


def test_garbled_frame_is_asked_for_again(
    sim_scanner: SimulatedPalmScanner, sim_device: SimulatedPalmDevice
) -> None:
    sim_device.garble_responses(2)  # ARMED and then the result, each corrupted once
    _match(sim_scanner)
    assert sim_scanner.resends == 2
    assert sim_device.resends_served == 2


def test_persistently_garbled_frames_are_a_protocol_error_then_recover(
    sim_scanner: SimulatedPalmScanner, sim_device: SimulatedPalmDevice
) -> None:
    sim_device.garble_responses(MAX_RESENDS + 1)
    with pytest.raises(ProtocolError, match="corrupt frames"):
        sim_scanner.identify(2.0)
    assert sim_scanner.resends == MAX_RESENDS
    # The device is still armed from the failed call: the next identify gets BUSY,
    # cancels it and arms again; the palm comes once the lane is armed again.
    assert sim_device.armed
    threading.Timer(0.1, sim_device.present_palm, args=(ALICE,)).start()
    result = sim_scanner.identify(2.0)
    assert isinstance(result, Matched)
    # GET_INFO; IDENTIFY + 3 RESENDs; IDENTIFY (BUSY), CANCEL, IDENTIFY.
    assert sim_device.commands_received == 8


@pytest.mark.parametrize("endpoint", [EP_IN, EP_OUT], ids=["in", "out"])
def test_stalled_endpoint_is_cleared_and_retried(
    sim_scanner: SimulatedPalmScanner, endpoint: int
) -> None:
    sim_scanner.simulator.stall(endpoint, count=2)
    _match(sim_scanner)


def test_endpoint_that_keeps_stalling_is_a_protocol_error(
    sim_scanner: SimulatedPalmScanner,
) -> None:
    sim_scanner.simulator.stall(EP_OUT, count=100)
    with pytest.raises(ProtocolError, match="stalling"):
        sim_scanner.identify(1.0)


def test_unplug_during_identify_and_replug_before_the_deadline_recovers(
    sim_scanner: SimulatedPalmScanner,
) -> None:
    bus = sim_scanner.simulator
    first_port = sim_scanner.health().info.port  # type: ignore[union-attr]

    def replug_with_palm() -> None:
        bus.replug()
        bus.device.present_palm(ALICE)

    threading.Timer(0.1, bus.unplug).start()
    threading.Timer(0.3, replug_with_palm).start()
    result = sim_scanner.identify(3.0)
    assert isinstance(result, Matched)
    health = sim_scanner.health()
    assert health.connected
    assert (health.disconnects, health.reconnects) == (1, 1)
    assert health.info is not None and health.info.port != first_port
    assert (health.last_error or "").startswith(("device_disconnected", "device_init"))


def test_unplugged_device_is_reported_and_refound_with_backoff(
    sim_scanner: SimulatedPalmScanner,
) -> None:
    bus = sim_scanner.simulator
    bus.unplug()
    with pytest.raises(DeviceDisconnected):
        sim_scanner.identify(0.3)
    health = sim_scanner.health()
    assert not health.connected
    assert health.disconnected_since is not None
    assert health.disconnects == 1
    attempts = sim_scanner.reconnect_attempts
    # Backoff: a call right after a failed attempt does not hammer the bus.
    with pytest.raises(DeviceDisconnected, match="did not come back"):
        sim_scanner.identify(0.01)
    assert sim_scanner.reconnect_attempts == attempts
    bus.replug()
    _match(sim_scanner)
    assert sim_scanner.health().reconnects == 1
    assert sim_scanner.health().disconnected_since is None


def test_cancel_while_waiting_for_an_unplugged_device_is_cancelled(
    sim_scanner: SimulatedPalmScanner,
) -> None:
    bus = sim_scanner.simulator
    bus.unplug()
    threading.Timer(0.3, sim_scanner.cancel).start()
    started = time.monotonic()
    result = sim_scanner.identify(5.0)
    assert isinstance(result, Cancelled)
    assert time.monotonic() - started < 2.0  # woken by the cancel, not at the deadline
    health = sim_scanner.health()
    assert not health.connected and health.next_retry_in_s is not None  # it was backing off
    bus.replug()
    _match(sim_scanner)


def test_replug_between_calls_is_transparent(sim_scanner: SimulatedPalmScanner) -> None:
    bus = sim_scanner.simulator
    bus.unplug()
    bus.replug()
    _match(sim_scanner)  # the stale handle fails with ENODEV; the driver re-finds and re-arms
    assert sim_scanner.health().reconnects == 1


def test_device_absent_at_open_is_an_init_error() -> None:
    scanner = make_simulated()
    scanner.simulator.unplug()
    with pytest.raises(DeviceInitError, match="no palm scanner"):
        scanner.open()
    assert not scanner.is_open
    assert (scanner.health().last_error or "").startswith("device_init")


def test_kernel_driver_is_detached_and_given_back() -> None:
    scanner = make_simulated(kernel_driver_active=True)
    bus = scanner.simulator
    with scanner:
        assert bus.kernel_driver_detaches == 1
        assert not bus.kernel_driver_bound()
        _match(scanner)
    assert bus.kernel_driver_bound()
    assert bus.open_handles == 0


def test_interface_claimed_by_someone_else_is_an_init_error() -> None:
    scanner = make_simulated()
    other = usb.core.find(backend=scanner.simulator)
    usb.util.claim_interface(other, INTERFACE_NUMBER)
    try:
        with pytest.raises(DeviceInitError, match="cannot claim"):
            scanner.open()
    finally:
        usb.util.dispose_resources(other)
    with scanner:
        assert scanner.health().connected


def test_no_palm_leaves_the_device_disarmed(
    sim_scanner: SimulatedPalmScanner, sim_device: SimulatedPalmDevice
) -> None:
    result = sim_scanner.identify(0.2)
    assert isinstance(result, TimedOut)
    assert not sim_device.armed
