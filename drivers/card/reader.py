"""The card-reader device class: what the daemon may ask of any card reader driver.

Drivers (serial, simulated, future USB-HID...) implement this ABC and are picked by name from
`drivers.registry`. All methods are thread-safe: `cancel()` may be called from another thread
while `read_card()` waits.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from drivers.base import Device, DeviceInfo
from drivers.card.encrypted import P2peStatus
from drivers.card.protocol import ReaderState
from drivers.card.results import ReadResult
from drivers.registry import CARD_READER

DEFAULT_READ_TIMEOUT_S = 60.0


class CardReader(Device):
    device_class: ClassVar[str] = CARD_READER

    @abstractmethod
    def identify(self) -> DeviceInfo:
        """Ask the reader who it is (model, firmware, serial number)."""

    @abstractmethod
    def status(self) -> ReaderState:
        """Ask the reader whether it is idle or armed. Reconnects if it was unplugged."""

    @abstractmethod
    def read_card(
        self, amount_minor: int, currency: str, timeout: float = DEFAULT_READ_TIMEOUT_S
    ) -> ReadResult:
        """Arm the reader for `amount_minor` `currency` and wait up to `timeout` for a card.

        Returns `CardRead` (validated card data: structure, track LRC, Luhn), `CardRemoved`,
        `CardUnreadable`, `Cancelled` (by `cancel()` or on the reader) or `TimedOut` (no card
        within `timeout`, or the reader's own wait expired). Raises `DeviceTimeout` (the
        reader stopped answering), `DeviceDisconnected` (gone and not back in time),
        `ProtocolError`, `ReaderBusy`, or a `CardDataError` subclass if the card data is
        invalid.
        """

    @abstractmethod
    def cancel(self) -> None:
        """End the pending `read_card` with `Cancelled` (from any thread), or disarm an idle
        reader."""

    def p2pe_status(self) -> P2peStatus | None:
        """For an encrypting (P2PE) reader, its scheme and KSN counter use; None for a reader
        that hands the host clear card data. Never does I/O."""
        return None
