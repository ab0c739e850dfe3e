"""USB HID class numbers (Device Class Definition for HID 1.11) and reading a report
descriptor, shared by the HID card readers and the simulated HID device."""

from __future__ import annotations

from drivers.usb.link import UsbLink

HID_CLASS = 0x03
BOOT_SUBCLASS = 0x01
KEYBOARD_PROTOCOL = 0x01
HID_DESCRIPTOR = 0x21
REPORT_DESCRIPTOR = 0x22
GET_DESCRIPTOR = 0x06
STANDARD_INTERFACE_IN = 0x81
# wDescriptorLength is 16 bits; real readers' descriptors are a few hundred bytes.
MAX_REPORT_DESCRIPTOR_LENGTH = 0xFFFF
DESCRIPTOR_TIMEOUT_S = 1.0


def read_report_descriptor(link: UsbLink, timeout_s: float = DESCRIPTOR_TIMEOUT_S) -> bytes:
    """The report descriptor of the claimed interface (HID 1.11, 7.1.1: GET_DESCRIPTOR of
    type Report, addressed to the interface)."""
    return link.control_in(
        STANDARD_INTERFACE_IN,
        GET_DESCRIPTOR,
        REPORT_DESCRIPTOR << 8,
        MAX_REPORT_DESCRIPTOR_LENGTH,
        timeout_s,
    )
