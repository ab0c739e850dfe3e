"""The `simulated-secure-msr` driver: the `secure-msr` driver on a simulated USB bus.

The very same driver code (find, claim, reports, reassembly, parsing, reconnect) runs against
a simulated encrypting reader: `SimulatedHidBackend` with a vendor-defined 64-byte report,
whose head encrypts under the standards' test BDK (`secure_swipes`). Each read swipes the
next card by itself (`_read_started`), after `swipe_delay_s`:

- from `swipes_file`, swipes encrypted beforehand by another process (`write_swipes`), one
  per read, in order, none once they are used up: the process running this driver then never
  holds a clear card number, and never imports the deck (its module-level test numbers would
  sit in the heap);
- else from `deck` (default: the deck's magstripe cards, in turn), encrypted as they are
  swiped; an empty deck swipes nothing by itself (tests swipe through `.simulator`).

Options (config `[devices.card_reader]`)::

    scheme = "tdes-2key"     # or "aes-128": the head's DUKPT scheme (test BDK of that scheme)
    first_counter = 1        # the KSN counter of the first swipe (a test starts near the end)
    swipes_file = "/path"    # pre-encrypted swipes, one hex line each (no deck imported)
    swipe_delay_s = 0.0      # from the read starting to the card swiped
    serial_number = "SIMSEC0001"
    unplugged_while = "/path/to/flag"  # unplugged while a file exists there
    report_poll_s, backoff_initial_s, backoff_max_s   # as for secure-msr
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from drivers.base import DEFAULT_BACKOFF_INITIAL_S, DEFAULT_BACKOFF_MAX_S
from drivers.card import dukpt
from drivers.card.hid_reader import DEFAULT_REPORT_POLL_S, MAX_REPORT_SIZE
from drivers.card.secure_msr import SecureMsrReader, swipe_reports
from drivers.card.secure_swipes import (
    SIM_DEVICE_SERIAL,
    TEST_BDK,
    EncryptingHead,
    SwipedCard,
    Tracks,
    ksn_at,
    magstripe_cards,
    magstripe_tracks,
    read_swipes,
    write_swipes,
)
from drivers.errors import OptionError
from drivers.usb.cable import follow_flag
from drivers.usb.hid_sim import SimulatedHidBackend, SimulatedHidFunction
from drivers.usb.sim_backend import UsbIdentity
from wire.p2pe import DukptScheme

__all__ = ["SecureMsrSimulator", "SimulatedSecureMsrReader", "write_swipes"]

log = logging.getLogger(__name__)

SIM_VENDOR_ID = 0x1D6B
SIM_PRODUCT_ID = 0x01F3
SIM_MANUFACTURER = "posd simulator"
SIM_PRODUCT = "Secure MSR, enhanced encrypted format (simulated)"
SIM_BCD_DEVICE = 0x0100
NO_SUBCLASS = NO_PROTOCOL = 0
# Vendor-defined usage page, one 64-byte input report (HID 1.11 short items).
REPORT_DESCRIPTOR = bytes.fromhex("0600FF0901A1010901150026FF0075089540810209028108C0")


class SecureMsrSimulator(SimulatedHidBackend):
    """The simulated reader on its bus: `swipe(card)`, `send(reports)`, `unplug()`, `replug()`."""

    def __init__(self, head: EncryptingHead, serial_number: str) -> None:
        identity = UsbIdentity(
            SIM_VENDOR_ID,
            SIM_PRODUCT_ID,
            SIM_MANUFACTURER,
            SIM_PRODUCT,
            serial_number,
            SIM_BCD_DEVICE,
        )
        function = SimulatedHidFunction(
            identity, REPORT_DESCRIPTOR, NO_SUBCLASS, NO_PROTOCOL, MAX_REPORT_SIZE
        )
        super().__init__(function)
        self.head = head

    def swipe(self, card: SwipedCard | None) -> None:
        """Swipe a card's magstripe through the head (None: a swipe it cannot read)."""
        self.swipe_tracks({} if card is None else magstripe_tracks(card))

    def swipe_tracks(self, tracks: Tracks) -> None:
        """Encrypt and send; a head whose DUKPT counter is exhausted reads no more cards."""
        try:
            swipe = self.head.swipe(tracks)
        except dukpt.DukptError as error:
            log.warning("simulated secure reader: %s; the swipe is not read", error)
            return
        self.send_swipe(swipe)

    def send_swipe(self, swipe: bytes) -> None:
        """Send a swipe's bytes, as reports."""
        self.send(swipe_reports(swipe))


class SimulatedSecureMsrReader(SecureMsrReader):
    driver_name = "simulated-secure-msr"

    def __init__(
        self,
        deck: Iterable[SwipedCard] | None = None,
        *,
        swipes_file: str | None = None,
        scheme: DukptScheme = DukptScheme.TDES_2KEY,
        first_counter: int = 1,
        swipe_delay_s: float = 0.0,
        serial_number: str = SIM_DEVICE_SERIAL,
        unplugged_while: str | None = None,
        report_poll_s: float = DEFAULT_REPORT_POLL_S,
        backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
    ) -> None:
        if not 0 <= swipe_delay_s < math.inf:
            raise OptionError("swipe_delay_s", "must be a finite number >= 0")
        super().__init__(
            SIM_VENDOR_ID,
            SIM_PRODUCT_ID,
            serial_number,
            scheme,
            report_poll_s=report_poll_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )
        dukpt_scheme = DukptScheme(scheme)
        head = EncryptingHead(
            TEST_BDK[dukpt_scheme],
            dukpt_scheme,
            _first_ksn(dukpt_scheme, first_counter),
            serial_number,
        )
        self.simulator = SecureMsrSimulator(head, serial_number)
        self._swipe_delay_s = swipe_delay_s
        self._next_lock = threading.Lock()
        self._files: list[bytes] = []
        self._cards: list[Tracks] = []
        self._next = 0
        if swipes_file is not None:
            self._files = read_swipes(Path(swipes_file))
        else:
            self._cards = [magstripe_tracks(card) for card in _deck_cards(deck)]
        follow_flag(unplugged_while, self.simulator, "secure-msr")

    def _usb_backend(self) -> SecureMsrSimulator:
        return self.simulator

    def _read_started(self) -> None:
        """Swipe the next card: a pre-encrypted swipe, or the next deck card."""
        action = self._next_swipe()
        if action is None:
            return
        if self._swipe_delay_s:
            timer = threading.Timer(self._swipe_delay_s, action)
            timer.daemon = True
            timer.start()
        else:
            action()

    def _next_swipe(self) -> Callable[[], None] | None:
        with self._next_lock:
            index = self._next
            self._next += 1
        if self._files:
            if index >= len(self._files):
                log.warning("simulated secure reader: its swipes file is used up")
                return None
            return partial(self.simulator.send_swipe, self._files[index])
        if self._cards:
            return partial(self.simulator.swipe_tracks, self._cards[index % len(self._cards)])
        return None


def _first_ksn(scheme: DukptScheme, first_counter: int) -> bytes:
    """The KSN of the first swipe; `OptionError` for a counter the KSN cannot carry or past
    the last usable one."""
    highest = (1 << dukpt.COUNTER_BITS[scheme]) - 1
    if not 1 <= first_counter <= highest:
        raise OptionError("first_counter", f"must be 1 to {highest} for {scheme.value}")
    try:
        return ksn_at(scheme, first_counter)
    except dukpt.DukptError:
        raise OptionError("first_counter", "is past the last usable DUKPT counter") from None


def _deck_cards(deck: Iterable[SwipedCard] | None) -> list[SwipedCard]:
    """The deck's magstripe cards; the default deck is imported here only, when needed."""
    if deck is None:
        from drivers.card.deck import default_deck

        deck = default_deck()
    return magstripe_cards(deck)
