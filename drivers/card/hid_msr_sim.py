"""The `simulated-hid-msr` card-reader driver: the `hid-msr` driver on a simulated USB bus.

The very same driver code (find, claim, report descriptor check, interrupt reads, reconnect)
runs against `SimulatedMsrDevice`: a HID interface that is not a keyboard (no boot protocol),
declaring the chosen layout's report descriptor and sending each swipe as that layout's input
reports, cut into full-speed interrupt packets. With `report_format = "magtek"` the device
presents MagTek's vendor and product id, so the driver picks the layout by id as it would on a
real MagTek reader. Tests reach the device through `.simulator`: `swipe(card)`,
`send(reports)`, `unplug()`, `replug()`.

Options: `deck` (the cards swiped, in turn, `swipe_delay_s` after each read starts: the
default deck's magstripe cards; an empty deck swipes nothing by itself), `report_format`
("hid-pos" | "magtek", default "hid-pos"), `swipe_delay_s` (default 0.2 s),
`unplugged_while` (unplugged while a file exists at that path), and the HID foundation's
`report_poll_s`, `backoff_initial_s`, `backoff_max_s`.
"""

from __future__ import annotations

from collections.abc import Iterable

from drivers.base import DEFAULT_BACKOFF_INITIAL_S, DEFAULT_BACKOFF_MAX_S
from drivers.card.deck import DeckCard
from drivers.card.hid_msr import HidMsrReader
from drivers.card.hid_msr_formats import (
    HID_POS,
    MAGTEK,
    MsrLayout,
    MsrSwipe,
    ReportFormat,
    TrackRead,
    layout_for,
    packets,
)
from drivers.card.hid_msr_formats.magtek import MAGTEK_HID_SWIPE_PRODUCT_ID, MAGTEK_VENDOR_ID
from drivers.card.hid_reader import DEFAULT_REPORT_POLL_S, MAX_REPORT_SIZE
from drivers.card.sim_cashier import DEFAULT_SWIPE_DELAY_S, Cashier
from drivers.usb.cable import follow_flag
from drivers.usb.hid_sim import SimulatedHidBackend, SimulatedHidFunction
from drivers.usb.sim_backend import UsbIdentity

SIM_VENDOR_ID = 0x1D6B
SIM_PRODUCT_ID = 0x0108
SIM_SERIAL = "SIM-MSR-0001"
SIM_RELEASE = 0x0100
NO_BOOT_PROTOCOL = 0  # interface subclass and protocol 0: a HID device, not a boot keyboard
SIM_IDENTITIES: dict[ReportFormat, UsbIdentity] = {
    HID_POS.name: UsbIdentity(
        SIM_VENDOR_ID,
        SIM_PRODUCT_ID,
        "posd simulator",
        "HID POS magnetic stripe reader (simulated)",
        SIM_SERIAL,
        SIM_RELEASE,
    ),
    MAGTEK.name: UsbIdentity(
        MAGTEK_VENDOR_ID,
        MAGTEK_HID_SWIPE_PRODUCT_ID,
        "Mag-Tek",
        "USB Swipe Reader (simulated)",
        SIM_SERIAL,
        SIM_RELEASE,
    ),
}


def swipe_of(card: DeckCard) -> MsrSwipe:
    """A deck card's magstripe as a swipe whose tracks 1 and 2 both decoded."""
    return MsrSwipe(TrackRead(text=card.track1), TrackRead(text=card.track2))


class SimulatedMsrDevice(SimulatedHidBackend):
    """A HID magnetic stripe reader of `layout` alone on a simulated bus."""

    def __init__(
        self, layout: MsrLayout, identity: UsbIdentity, descriptor_tail: bytes = b""
    ) -> None:
        """`descriptor_tail`: bytes sent after the report descriptor, past its declared
        length (a hostile or broken device)."""
        super().__init__(
            SimulatedHidFunction(
                identity,
                layout.report_descriptor + descriptor_tail,
                subclass=NO_BOOT_PROTOCOL,
                protocol=NO_BOOT_PROTOCOL,
                report_size=MAX_REPORT_SIZE,
                declared_length=len(layout.report_descriptor),
            )
        )
        self.layout = layout

    def swipe(self, card: DeckCard | MsrSwipe) -> None:
        """Swipe a deck card (or send any swipe: a track not decoded, track 3...)."""
        self.send(self.layout.encode(card if isinstance(card, MsrSwipe) else swipe_of(card)))

    def send(self, reports: Iterable[bytes]) -> None:
        """Send input reports as the device does: each in packets of the endpoint's size."""
        super().send([packet for report in reports for packet in packets(report)])


class SimulatedHidMsrReader(HidMsrReader):
    driver_name = "simulated-hid-msr"

    def __init__(
        self,
        deck: Iterable[DeckCard] | None = None,
        *,
        report_format: ReportFormat = ReportFormat.HID_POS,
        swipe_delay_s: float = DEFAULT_SWIPE_DELAY_S,
        unplugged_while: str | None = None,
        report_poll_s: float = DEFAULT_REPORT_POLL_S,
        backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
    ) -> None:
        layout = layout_for(SIM_VENDOR_ID, SIM_PRODUCT_ID, report_format)
        identity = SIM_IDENTITIES[layout.name]
        #: The simulated reader: `swipe(card)`, `send(reports)`, `unplug()`, `replug()`.
        self.simulator = SimulatedMsrDevice(layout, identity)
        self._cashier = Cashier(self.simulator.swipe, deck, swipe_delay_s)
        super().__init__(
            identity.vendor_id,
            identity.product_id,
            identity.serial_number,
            report_poll_s=report_poll_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )
        follow_flag(unplugged_while, self.simulator, "hid-msr")

    def _usb_backend(self) -> SimulatedMsrDevice:
        return self.simulator

    def _read_started(self) -> None:
        self._cashier.read_started()
