"""The card-reader device class: what the daemon may ask of any card reader driver.

Drivers (serial, simulated, future USB-HID...) implement this ABC and are picked by name from
`drivers.registry`. All methods are thread-safe: `cancel()` may be called from another thread
while `read_card()` waits.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from drivers.base import Device, DeviceInfo
from drivers.card.carddata import CardData
from drivers.card.protocol import ReaderState
from drivers.errors import DriverUnavailable
from drivers.registry import CARD_READER, load_driver

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
    ) -> CardData:
        """Arm the reader for `amount_minor` `currency` and wait up to `timeout` for a card.

        Returns validated card data (structure, track LRC, Luhn) or raises:
        `TransactionCancelled`, `CardRemoved`, `TransactionTimedOut`, `TransactionError`
        (reported by the reader); `DeviceTimeout` (no card within `timeout`);
        `DeviceDisconnected` (gone and not back in time); `ProtocolError`;
        a `CardDataError` subclass if the card data is invalid.
        """

    @abstractmethod
    def cancel(self) -> None:
        """Cancel the pending `read_card` (from any thread) or disarm an idle reader."""


def card_reader_driver(name: str) -> type[CardReader]:
    """The card-reader driver class named in config ("serial", "simulated"...)."""
    cls = load_driver(CARD_READER, name)
    if not issubclass(cls, CardReader):
        raise DriverUnavailable(f"{cls.__name__} is not a CardReader")
    return cls


def create_card_reader(name: str, **options: Any) -> CardReader:
    """Instantiate (not open) the named card-reader driver with config `options`."""
    return card_reader_driver(name)(**options)
