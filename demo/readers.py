"""`python -m demo --reader NAME`: which simulated card reader the demo's daemon runs, and what
else that reader class implies.

Each reader class a store can buy has a simulated driver that runs the real driver's code on
a simulated link (`drivers.registry`): `serial` (the default, and `make demo`'s) is the serial
reader on a pty, `hid-keyboard` and `hid-msr` USB HID readers that hand over clear tracks,
`secure-msr` an encrypting (P2PE) reader. With `secure-msr` the lane runs with
`[payments] card_data = "p2pe"` under the demo's BDK, and the demo proves at the end that no
clear card number reached the journal, the daemon's log or the daemon's memory.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.devconfig import Table
from demo.localaws.payment_crypto import TDES_BDK_ALIAS
from wire.p2pe import DukptScheme

SERIAL, HID_KEYBOARD, HID_MSR, SECURE_MSR = "serial", "hid-keyboard", "hid-msr", "secure-msr"
DEFAULT_READER = SERIAL
# --reader NAME -> the simulated driver that stands for that reader class
SIMULATED_DRIVERS: dict[str, str] = {
    SERIAL: "simulated",
    HID_KEYBOARD: "simulated-hid-keyboard",
    HID_MSR: "simulated-hid-msr",
    SECURE_MSR: "simulated-secure-msr",
}
READERS = tuple(SIMULATED_DRIVERS)
# The BDK the simulated secure reader encrypts under (the X9.24-1 test BDK), as the demo's
# AWS Payment Cryptography stand-in names it.
DEMO_BDK_ALIAS = TDES_BDK_ALIAS
DEMO_SCHEME = DukptScheme.TDES_2KEY
FIRST_COUNTER = 1
SWIPES_FILE = "secure-swipes.hex"


@dataclass(frozen=True)
class ReaderSetup:
    """The `[devices.card_reader]` table and the `[payments]` keys one reader class needs."""

    reader: str
    card_reader: dict[str, Any]
    payments: Table = field(default_factory=dict)

    @property
    def p2pe(self) -> bool:
        return bool(self.payments.get("card_data") == "p2pe")


def reader_setup(reader: str, driver_options: Table | None = None) -> ReaderSetup:
    """The setup for `--reader reader`; `driver_options` adds the simulated driver's own
    (the pre-encrypted swipes file of `secure-msr`)."""
    try:
        driver = SIMULATED_DRIVERS[reader]
    except KeyError:
        raise ValueError(f"reader must be one of {', '.join(READERS)}, got {reader!r}") from None
    card_reader = {"driver": driver, **(driver_options or {})}
    if reader == SECURE_MSR:
        return ReaderSetup(
            reader, card_reader, {"card_data": "p2pe", "p2pe_key_ref": DEMO_BDK_ALIAS}
        )
    return ReaderSetup(reader, card_reader)


def write_secure_swipes(directory: Path, count: int) -> dict[str, Any]:
    """`count` swipes of the deck's magstripe cards, encrypted here, in the demo's process,
    into a file the daemon's simulated secure reader replays (`swipes_file`): the daemon then
    never holds, nor imports, a clear card number. Returns the reader's options."""
    from drivers.card.deck import default_deck
    from drivers.card.secure_swipes import TEST_BDK, ksn_at, magstripe_cards, write_swipes

    cards = itertools.islice(itertools.cycle(magstripe_cards(default_deck())), count)
    path = directory / SWIPES_FILE
    write_swipes(
        path, cards, TEST_BDK[DEMO_SCHEME], DEMO_SCHEME, ksn_at(DEMO_SCHEME, FIRST_COUNTER)
    )
    return {"swipes_file": str(path), "scheme": DEMO_SCHEME.value}
