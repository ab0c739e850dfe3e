"""The `hid-msr` card-reader driver: a USB HID magnetic stripe reader that reports the tracks
in input reports (not as keystrokes), on the HID foundation (`hid_reader`).

Two report layouts are read (`hid_msr_formats`): the HID Point of Sale MSR page 0x8E and
MagTek's vendor report. The layout follows from the reader's vendor and product id unless
`report_format` forces it; at every (re)connect the reader's report descriptor is read and
must declare that layout, so a reader set up another way fails to open with a clear error
instead of misreading every swipe. A swipe's tracks go through the track parsers (structure,
LRC, Luhn); a track the reader flags as not decoded is left out while another track reads,
and a swipe with no track 1 or 2 read is `CardUnreadable`.

Options (config `[devices.card_reader]`): `vendor_id`, `product_id`, `serial_number`,
`interface`, `report_poll_s`, `backoff_initial_s`, `backoff_max_s` (the HID foundation's),
and `report_format` ("hid-pos" | "magtek"; default: by vendor and product id).
"""

from __future__ import annotations

from typing import Any

from drivers.card.hid_msr_formats import ReportFormat, layout_for
from drivers.card.hid_reader import HidCardReader, SwipeAssembler
from drivers.card.results import ReadResult
from drivers.usb.hid import read_report_descriptor
from drivers.usb.link import UsbLink


class HidMsrReader(HidCardReader):
    driver_name = "hid-msr"

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        serial_number: str | None = None,
        *,
        report_format: ReportFormat | None = None,
        **options: Any,
    ) -> None:
        #: The report layout this reader is read with.
        self.layout = layout_for(vendor_id, product_id, report_format)
        super().__init__(vendor_id, product_id, serial_number, **options)

    def _accept(self, link: UsbLink) -> None:
        self.layout.check_descriptor(read_report_descriptor(link))

    def _assembler(self) -> SwipeAssembler:
        return self.layout.assembler()

    def _decode(self, swipe: bytes) -> ReadResult:
        return self.layout.parse(swipe).read()
