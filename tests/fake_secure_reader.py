"""A stand-in for an encrypting card reader, for the tests that ran before the simulated
`secure-msr` driver existed: it hands out `EncryptedCardRead`s of the deck's public test
numbers (random "ciphertext", see `tests.p2pe_reads`) and reports a P2PE status.

Until those drivers land, `stand_in_for_missing_readers` puts it in the driver table under
their names (only the names that are missing, and only for the test), so config checks and the
daemon can name them. `clear = true` makes it a misconfigured reader that sends clear card
data (for the mode-mismatch tests); `counter_used` sets the KSN counter use it reports.
"""

from __future__ import annotations

import itertools
import threading
from typing import ClassVar

from drivers.base import DeviceInfo
from drivers.card.carddata import CardData, EntryMode, Pan
from drivers.card.deck import TEST_PANS
from drivers.card.encrypted import P2peStatus
from drivers.card.protocol import ReaderState
from drivers.card.reader import DEFAULT_READ_TIMEOUT_S, CardReader
from drivers.card.results import CardRead, ReadResult
from drivers.outcomes import Cancelled
from drivers.registry import CARD_READER
from tests.p2pe_reads import DEVICE_SERIAL, FORMAT, TDES_KSN, encrypted_read
from wire.p2pe import DukptScheme

MODEL = "Fake SecureMag"
FIRMWARE = "fake-1.0"


class FakeSecureReader(CardReader):
    driver_name: ClassVar[str] = "fake-secure"

    def __init__(
        self,
        counter_used: float = 0.001,
        clear: bool = False,
        vendor_id: int = 0,
        product_id: int = 0,
        serial_number: str | None = None,
    ) -> None:
        super().__init__()
        self._counter_used = counter_used
        self._clear = clear
        self._pans = itertools.cycle([pan for _, pan in TEST_PANS])
        self._cancelled = threading.Event()
        self._reads = 0

    def _open(self) -> None:
        self._monitor.connected(self.identify())

    def _close(self) -> None:
        pass

    def identify(self) -> DeviceInfo:
        return DeviceInfo(MODEL, FIRMWARE, DEVICE_SERIAL, driver=self.driver_name, port="usb")

    def status(self) -> ReaderState:
        return ReaderState.IDLE

    def read_card(
        self, amount_minor: int, currency: str, timeout: float = DEFAULT_READ_TIMEOUT_S
    ) -> ReadResult:
        if self._cancelled.is_set():
            self._cancelled.clear()
            return Cancelled()
        self._reads += 1
        pan = next(self._pans)
        if self._clear:
            return CardRead(CardData(EntryMode.MAGSTRIPE, Pan(pan)))
        return encrypted_read(pan)

    def cancel(self) -> None:
        self._cancelled.set()

    def p2pe_status(self) -> P2peStatus:
        return P2peStatus(DukptScheme.TDES_2KEY, FORMAT, TDES_KSN, self._counter_used)


STAND_IN = f"{__name__}:FakeSecureReader"
READER_NAMES = (
    "hid-keyboard",
    "simulated-hid-keyboard",
    "hid-msr",
    "simulated-hid-msr",
    "secure-msr",
    "simulated-secure-msr",
)


def stand_in_for_missing_readers(table: dict[tuple[str, str], str]) -> dict[str, str]:
    """Driver-table rows (name -> target) for the reader names `table` lacks; the caller adds
    them for the test's duration (pytest's monkeypatch.setitem on `drivers.registry._TABLE`)."""
    return {name: STAND_IN for name in READER_NAMES if (CARD_READER, name) not in table}
