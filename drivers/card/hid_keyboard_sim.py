"""The `simulated-hid-keyboard` card-reader driver: `hid-keyboard` on a simulated USB bus.

A peer of the real driver: the very same code (find, detach the kernel driver, claim, read
interrupt reports, reconnect, decode) runs against a simulated keyboard-mode reader
(`drivers.usb.hid_sim`) instead of libusb. Each read swipes the deck's next card after
`swipe_delay_s`, so the daemon and the demo run unattended, as with the serial simulator.
Tests reach the device through `.simulator`: `swipe(card)`, `send(reports)`, `unplug()`,
`replug()`, `typed_into_desktop`.

Options (config `[devices.card_reader]`)::

    layout = "de"               # the layout the simulated reader types in (as hid-keyboard)
    swipe_delay_s = 0.2         # from the start of a read to the swipe
    deck = [...]                # DeckCards (Python callers only; default: the magstripe
                                # cards of drivers.card.deck; empty: swipe only when told)
    serial_number = "SIM-KBD-0001"
    unplugged_while = "/path/to/flag"   # unplugged while a file exists there (daemon tests)
    inter_key_timeout_s, report_poll_s, backoff_initial_s, backoff_max_s   # as hid-keyboard
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from drivers.base import DEFAULT_BACKOFF_INITIAL_S, DEFAULT_BACKOFF_MAX_S
from drivers.card.deck import DeckCard
from drivers.card.hid_keyboard import (
    DEFAULT_INTER_KEY_TIMEOUT_S,
    DEFAULT_LAYOUT,
    HidKeyboardReader,
)
from drivers.card.hid_reader import DEFAULT_REPORT_POLL_S
from drivers.card.keyboard_layouts import KeyboardLayout, LayoutName, layout_named
from drivers.card.keyboard_reports import BOOT_KEYBOARD_REPORT_DESCRIPTOR, type_swipe
from drivers.card.sim_cashier import DEFAULT_SWIPE_DELAY_S, Cashier
from drivers.usb.cable import follow_flag
from drivers.usb.hid_sim import SimulatedHidBackend, SimulatedHidFunction
from drivers.usb.sim_backend import UsbIdentity

SIM_VENDOR_ID = 0x1D6B
SIM_PRODUCT_ID = 0x0151
SIM_MANUFACTURER = "posd simulator"
SIM_PRODUCT = "Keyboard-mode card reader (simulated)"
SIM_SERIAL = "SIM-KBD-0001"
SIM_BCD_DEVICE = 0x0100


class KeyboardReaderSimulator(SimulatedHidBackend):
    """A keyboard-mode card reader on a virtual bus: swipes cards in its layout."""

    def __init__(self, keyboard: KeyboardLayout, serial_number: str = SIM_SERIAL) -> None:
        identity = UsbIdentity(
            SIM_VENDOR_ID,
            SIM_PRODUCT_ID,
            SIM_MANUFACTURER,
            SIM_PRODUCT,
            serial_number,
            SIM_BCD_DEVICE,
        )
        super().__init__(SimulatedHidFunction(identity, BOOT_KEYBOARD_REPORT_DESCRIPTOR))
        self.keyboard = keyboard

    def swipe(self, card: DeckCard) -> None:
        """Swipe `card`: its tracks typed as key presses, then Enter."""
        self.send(type_swipe(card.track1.reveal() + card.track2.reveal(), self.keyboard))


class SimulatedHidKeyboardReader(HidKeyboardReader):
    driver_name: ClassVar[str] = "simulated-hid-keyboard"

    def __init__(
        self,
        deck: Iterable[DeckCard] | None = None,
        layout: LayoutName = DEFAULT_LAYOUT,
        swipe_delay_s: float = DEFAULT_SWIPE_DELAY_S,
        serial_number: str = SIM_SERIAL,
        unplugged_while: str | None = None,
        inter_key_timeout_s: float = DEFAULT_INTER_KEY_TIMEOUT_S,
        report_poll_s: float = DEFAULT_REPORT_POLL_S,
        backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
    ) -> None:
        #: The simulated bus and reader: swipe, send, unplug, replug, typed_into_desktop.
        self.simulator = KeyboardReaderSimulator(layout_named(layout), serial_number)
        self._cashier = Cashier(self.simulator.swipe, deck, swipe_delay_s)
        follow_flag(unplugged_while, self.simulator, "card-reader")
        # Selecting by serial number makes every connect read string descriptors too.
        super().__init__(
            SIM_VENDOR_ID,
            SIM_PRODUCT_ID,
            layout=layout,
            inter_key_timeout_s=inter_key_timeout_s,
            serial_number=serial_number,
            report_poll_s=report_poll_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )

    def _usb_backend(self) -> KeyboardReaderSimulator:
        return self.simulator

    def _read_started(self) -> None:
        self._cashier.read_started()
