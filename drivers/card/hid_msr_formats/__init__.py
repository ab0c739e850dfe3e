"""Input-report layouts of USB HID magnetic stripe readers, and which one a reader uses.

Two layouts (`hid_pos`: the HID Point of Sale MSR page 0x8E; `magtek`: MagTek's fixed vendor
report). A reader's layout follows from its vendor and product id, or is forced with the
`report_format` option ("hid-pos" | "magtek"); the reader's report descriptor is checked
against it at open. Each layout parses its reports into per-track decode status and text
(`MsrSwipe`, whose `read()` is the read result) and encodes them for the simulator.
"""

from __future__ import annotations

from drivers.card.hid_msr_formats.hid_pos import HidPosLayout
from drivers.card.hid_msr_formats.layout import MsrLayout, ReportAssembler, ReportFormat, packets
from drivers.card.hid_msr_formats.magtek import (
    MAGTEK_HID_SWIPE_PRODUCT_ID,
    MAGTEK_VENDOR_ID,
    MagTekLayout,
)
from drivers.card.hid_msr_formats.swipe import (
    DECODE_ERROR,
    NOT_PRESENT,
    MsrSwipe,
    TrackRead,
)
from drivers.errors import OptionError

HID_POS = HidPosLayout()
MAGTEK = MagTekLayout()
LAYOUTS: dict[ReportFormat, MsrLayout] = {layout.name: layout for layout in (HID_POS, MAGTEK)}
# Readers known to send a vendor layout; any other reader is expected to use page 0x8E.
KNOWN_READERS: dict[tuple[int, int], MsrLayout] = {
    (MAGTEK_VENDOR_ID, MAGTEK_HID_SWIPE_PRODUCT_ID): MAGTEK,
}


def layout_for(
    vendor_id: int, product_id: int, report_format: ReportFormat | str | None = None
) -> MsrLayout:
    """The layout forced by `report_format`, else the known reader's, else page 0x8E."""
    if report_format is None:
        return KNOWN_READERS.get((vendor_id, product_id), HID_POS)
    try:
        return LAYOUTS[ReportFormat(report_format)]
    except ValueError:
        known = ", ".join(member.value for member in ReportFormat)
        raise OptionError("report_format", f"must be one of {known}") from None


__all__ = [
    "DECODE_ERROR",
    "HID_POS",
    "LAYOUTS",
    "MAGTEK",
    "NOT_PRESENT",
    "MsrLayout",
    "MsrSwipe",
    "ReportAssembler",
    "ReportFormat",
    "TrackRead",
    "layout_for",
    "packets",
]
