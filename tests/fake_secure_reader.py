"""A stand-in encrypting card reader, where the simulated `secure-msr` cannot do what a test
needs: report a chosen KSN counter use before any read (`counter_used`; the simulator knows
its counter from its reads only), or send clear card data as a misconfigured reader would
(`clear`). It hands out `EncryptedCardRead`s of the deck's public test numbers (random
"ciphertext", see `tests.p2pe_reads`). The `fake_secure_msr` fixture puts it in the driver
table as `simulated-secure-msr` for one test.
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
