"""The simulated USB bus and its HID device, seen through pyusb exactly as a driver sees them."""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import usb.core
import usb.util
from hypothesis import given
from hypothesis import strategies as st

from drivers.card.hid_keyboard import HidKeyboardReader
from drivers.errors import OptionError, ProtocolError
from drivers.palm.amazon_one import AmazonOneScanner
from drivers.usb.cable import CABLE_POLL_S, follow_flag
from drivers.usb.hid import (
    HID_CLASS,
    HID_DESCRIPTOR,
    REPORT_DESCRIPTOR,
    declared_report_length,
)
from drivers.usb.hid_sim import (
    EP_IN,
    SimulatedHidBackend,
    SimulatedHidFunction,
    hid_class_descriptor,
)
from drivers.usb.sim_backend import INTERFACE_NUMBER, UsbIdentity

VENDOR_ID = 0x1D6B
PRODUCT_ID = 0x0150
IDENTITY = UsbIdentity(VENDOR_ID, PRODUCT_ID, "posd simulator", "HID test device", "HID-1", 0x0203)
# A made-up but well-formed report descriptor: usage page, usage, collection, end collection.
REPORT_DESCRIPTOR_BYTES = bytes.fromhex("05010906a101c0")
REPORTS = [bytes([0, 0, 0x04, 0, 0, 0, 0, 0]), bytes(8)]
TIMEOUT_MS = 50
GET_REPORT_DESCRIPTOR = (0x81, 0x06, REPORT_DESCRIPTOR << 8, INTERFACE_NUMBER)


@pytest.fixture
def backend() -> SimulatedHidBackend:
    return SimulatedHidBackend(SimulatedHidFunction(IDENTITY, REPORT_DESCRIPTOR_BYTES))


def find(backend: SimulatedHidBackend) -> usb.core.Device:
    device = usb.core.find(backend=backend, idVendor=VENDOR_ID, idProduct=PRODUCT_ID)
    assert device is not None
    return device


def claim(backend: SimulatedHidBackend) -> usb.core.Device:
    device = find(backend)
    device.detach_kernel_driver(INTERFACE_NUMBER)
    device.set_configuration()
    usb.util.claim_interface(device, INTERFACE_NUMBER)
    return device


def test_descriptors_say_hid_boot_keyboard_with_one_interrupt_in_endpoint(
    backend: SimulatedHidBackend,
) -> None:
    device = find(backend)
    assert (device.product, device.manufacturer, device.serial_number) == (
        "HID test device",
        "posd simulator",
        "HID-1",
    )
    assert device.bcdDevice == 0x0203
    interface = device[0][(0, 0)]
    assert (interface.bInterfaceClass, interface.bInterfaceSubClass) == (HID_CLASS, 1)
    assert interface.bInterfaceProtocol == 1
    (endpoint,) = interface.endpoints()
    assert endpoint.bEndpointAddress == EP_IN
    assert usb.util.endpoint_type(endpoint.bmAttributes) == usb.util.ENDPOINT_TYPE_INTR
    hid = bytes(interface.extra_descriptors)
    assert hid[1] == HID_DESCRIPTOR and hid[6] == REPORT_DESCRIPTOR
    assert int.from_bytes(hid[7:9], "little") == len(REPORT_DESCRIPTOR_BYTES)


def test_report_descriptor_over_get_descriptor(backend: SimulatedHidBackend) -> None:
    device = claim(backend)
    data = device.ctrl_transfer(*GET_REPORT_DESCRIPTOR, len(REPORT_DESCRIPTOR_BYTES))
    assert bytes(data) == REPORT_DESCRIPTOR_BYTES


def test_unknown_class_request_stalls(backend: SimulatedHidBackend) -> None:
    device = claim(backend)
    with pytest.raises(usb.core.USBError) as caught:
        device.ctrl_transfer(0xA1, 0x01, 0x0100, INTERFACE_NUMBER, 8)  # GET_REPORT
    assert caught.value.errno == errno.EPIPE


def test_kernel_driver_bound_at_plug_in_takes_the_reports(backend: SimulatedHidBackend) -> None:
    device = find(backend)
    assert device.is_kernel_driver_active(INTERFACE_NUMBER)
    with pytest.raises(usb.core.USBError) as caught:
        usb.util.claim_interface(device, INTERFACE_NUMBER)
    assert caught.value.errno == errno.EBUSY
    backend.send(REPORTS)
    assert backend.typed_into_desktop == REPORTS


def test_reports_are_read_in_order_once_detached(backend: SimulatedHidBackend) -> None:
    device = claim(backend)
    backend.send(REPORTS)
    assert [bytes(device.read(EP_IN, 64, TIMEOUT_MS)) for _ in REPORTS] == REPORTS
    with pytest.raises(usb.core.USBTimeoutError):
        device.read(EP_IN, 64, TIMEOUT_MS)
    assert backend.typed_into_desktop == []


def test_reports_queued_when_the_kernel_takes_the_interface_back_are_typed(
    backend: SimulatedHidBackend,
) -> None:
    device = claim(backend)
    backend.send(REPORTS)
    usb.util.release_interface(device, INTERFACE_NUMBER)
    device.attach_kernel_driver(INTERFACE_NUMBER)
    assert backend.typed_into_desktop == REPORTS


def test_unplug_loses_queued_reports_and_replug_rebinds_the_kernel_driver(
    backend: SimulatedHidBackend,
) -> None:
    device = claim(backend)
    address = device.address
    backend.send(REPORTS)
    backend.unplug()
    with pytest.raises(usb.core.USBError) as caught:
        device.read(EP_IN, 64, TIMEOUT_MS)
    assert caught.value.errno == errno.ENODEV
    backend.send(REPORTS)  # swiped while the cable is out: nobody hears it
    assert usb.core.find(backend=backend, idVendor=VENDOR_ID) is None
    backend.replug()
    again = find(backend)
    assert again.address != address
    assert again.is_kernel_driver_active(INTERFACE_NUMBER)
    assert backend.hid.pending == 0 and backend.typed_into_desktop == []


def test_a_read_waiting_on_the_endpoint_ends_with_enodev_at_unplug(
    backend: SimulatedHidBackend,
) -> None:
    device = claim(backend)
    started = time.monotonic()
    threading.Timer(0.05, backend.unplug).start()
    with pytest.raises(usb.core.USBError) as caught:
        device.read(EP_IN, 64, 2000)
    assert caught.value.errno == errno.ENODEV
    assert time.monotonic() - started < 1.0


def test_stalled_endpoint_until_cleared(backend: SimulatedHidBackend) -> None:
    device = claim(backend)
    backend.stall(EP_IN)
    with pytest.raises(usb.core.USBError) as caught:
        device.read(EP_IN, 64, TIMEOUT_MS)
    assert caught.value.errno == errno.EPIPE
    device.clear_halt(EP_IN)
    backend.send(REPORTS[:1])
    assert bytes(device.read(EP_IN, 64, TIMEOUT_MS)) == REPORTS[0]


def test_wait_claimed(backend: SimulatedHidBackend) -> None:
    assert not backend.wait_claimed(0.01)
    device = claim(backend)
    assert backend.wait_claimed(0.01)
    usb.util.dispose_resources(device)
    assert not backend.wait_claimed(0.01)


def test_cable_flag_file_pulls_and_plugs_the_cable(
    backend: SimulatedHidBackend, tmp_path: Path
) -> None:
    flag = tmp_path / "unplugged"
    follow_flag(str(flag), backend, "hid")
    flag.touch()
    _wait_for(lambda: not backend.plugged)
    flag.unlink()
    _wait_for(lambda: backend.plugged)


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 50 * CABLE_POLL_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(CABLE_POLL_S / 5)


@given(st.integers(0, 0xFFFF), st.binary(max_size=12))
def test_the_declared_report_length_is_read_back_from_the_hid_descriptor(
    length: int, other: bytes
) -> None:
    other_descriptor = bytes([len(other) + 2, 0x24]) + other  # some other class descriptor
    assert declared_report_length(other_descriptor + hid_class_descriptor(length)) == length


@given(st.binary(max_size=40))
def test_any_class_descriptor_bytes_give_a_length_or_a_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        assert 0 <= declared_report_length(data) <= 0xFFFF


def test_no_hid_descriptor_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="no HID report descriptor"):
        declared_report_length(b"")


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"vendor_id": 0x10000, "product_id": 1}, "vendor_id"),
        ({"vendor_id": 1, "product_id": -1}, "product_id"),
        ({"vendor_id": 1, "product_id": 1, "interface": -1}, "interface"),
    ],
)
@pytest.mark.parametrize("driver", [AmazonOneScanner, HidKeyboardReader], ids=["palm", "hid"])
def test_every_usb_driver_refuses_ids_and_interfaces_no_usb_device_has(
    driver: type[AmazonOneScanner] | type[HidKeyboardReader], options: dict[str, Any], option: str
) -> None:
    """Checked in one place (`UsbSelector`), so the palm scanner refuses them too."""
    with pytest.raises(OptionError) as refused:
        driver(**options)
    assert refused.value.option == option
