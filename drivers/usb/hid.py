"""USB HID class numbers (Device Class Definition for HID 1.11) and reading a report
descriptor, shared by the HID card readers and the simulated HID device."""

from __future__ import annotations

from drivers.errors import ProtocolError
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
# The HID descriptor (HID 1.11, 6.2.1): bLength, bDescriptorType, bcdHID (2), bCountryCode,
# bNumDescriptors, then (bDescriptorType, wDescriptorLength (2)) per class descriptor.
HID_DESCRIPTOR_HEADER = 6
CLASS_DESCRIPTOR_ENTRY = 3


def declared_report_length(class_descriptors: bytes) -> int:
    """The report descriptor's length as the interface's HID descriptor declares it.

    `ProtocolError` if there is no HID descriptor declaring one (not a HID interface)."""
    offset = 0
    while offset + 1 < len(class_descriptors):
        length, kind = class_descriptors[offset], class_descriptors[offset + 1]
        if length < 2:
            break  # a zero or one-byte descriptor: the rest cannot be walked
        hid = class_descriptors[offset : offset + length]
        if kind == HID_DESCRIPTOR:
            for entry in range(HID_DESCRIPTOR_HEADER, len(hid) - 2, CLASS_DESCRIPTOR_ENTRY):
                if hid[entry] == REPORT_DESCRIPTOR:
                    return int.from_bytes(hid[entry + 1 : entry + 3], "little")
        offset += length
    raise ProtocolError("the interface declares no HID report descriptor")


def read_report_descriptor(link: UsbLink, timeout_s: float = DESCRIPTOR_TIMEOUT_S) -> bytes:
    """The report descriptor of the claimed interface (HID 1.11, 7.1.1: GET_DESCRIPTOR of
    type Report, addressed to the interface), no longer than its HID descriptor declares:
    whatever a device would send past that is never read."""
    return link.control_in(
        STANDARD_INTERFACE_IN,
        GET_DESCRIPTOR,
        REPORT_DESCRIPTOR << 8,
        min(declared_report_length(link.class_descriptors), MAX_REPORT_DESCRIPTOR_LENGTH),
        timeout_s,
    )
