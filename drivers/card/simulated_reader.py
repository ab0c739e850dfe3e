"""The `simulated` card-reader driver: the serial driver wired to its own pty simulator.

A peer of the real drivers (python-can's `virtual` bus): config can say
`driver = "simulated"` on a dev box or in the demo, and the daemon runs the real serial code
against `CardReaderSimulator`. Tests reach the simulator through `.simulator` to inject faults.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drivers.card.deck import DeckCard
from drivers.card.link import LinkTiming
from drivers.card.serial_reader import SerialCardReader
from drivers.card.simulator import CardReaderSimulator


class SimulatedCardReader(SerialCardReader):
    driver_name = "simulated"

    def __init__(
        self,
        deck: Iterable[DeckCard] | None = None,
        *,
        device_timing: LinkTiming | None = None,
        **serial_options: Any,
    ) -> None:
        self.simulator = CardReaderSimulator(deck, timing=device_timing)
        try:
            super().__init__(self.simulator.port, **serial_options)
        except BaseException:
            self.simulator.stop()  # a refused option must not leave the simulator's dir behind
            raise

    def _open(self) -> None:
        self.simulator.start()
        try:
            super()._open()
        except BaseException:
            self.simulator.stop()
            raise

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self.simulator.stop()
