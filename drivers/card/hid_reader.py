"""The USB HID card readers' common part: find, claim, read input reports, reconnect.

Three reader classes a store can buy share it (`hid_keyboard`, `hid_msr`, `secure_msr`).
They differ only in how input reports become a swipe (`SwipeAssembler`) and how a swipe
becomes card data (`_decode`). A HID reader has no "arm" command: it reports whenever a card
is swiped, so reports that arrive while no `read_card` waits are read and dropped (a swipe
outside a payment must never be charged later), and the kernel's driver is detached so that
a keyboard-emulating reader never types a card number into another window.

STUB: the contract below is what the three drivers code against; the body lands with the
foundation (simulated HID backend, link, reconnect).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from drivers.card.reader import CardReader
from drivers.card.results import ReadResult


class SwipeAssembler(ABC):
    """Turns a reader's input reports into whole swipes (the bytes `_decode` parses)."""

    @abstractmethod
    def feed(self, report: bytes, now: float) -> bytes | None:
        """Take one input report (monotonic `now`); the finished swipe, or None for more.

        Raises `ProtocolError` for a report that cannot belong to a swipe."""

    def expire(self, now: float) -> bytes | None:
        """Called when no report came for a while: a swipe that ends on silence (keyboard
        readers' inter-key timeout) is returned here; None otherwise."""
        return None

    @abstractmethod
    def reset(self) -> None:
        """Drop a partial swipe (after a cancel, an unplug or a malformed report)."""


class HidCardReader(CardReader, ABC):
    """A card reader on USB HID, selected by vendor id, product id and optional serial."""

    driver_name: ClassVar[str]

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        serial_number: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        raise NotImplementedError

    @abstractmethod
    def _assembler(self) -> SwipeAssembler:
        """A fresh assembler for this reader's report format."""

    @abstractmethod
    def _decode(self, swipe: bytes) -> ReadResult:
        """`CardRead` (CardData or EncryptedCardData) or `CardUnreadable` for a swipe the
        reader itself flagged as bad; raises a `CardDataError` for data that fails checks."""
