"""The simulated secure reader's head: swipes encrypted under a DUKPT key, KSN by KSN.

Two sources, both giving swipes in the reader's format (`secure_formats`):
- `EncryptingHead` encrypts clear tracks as they come (tests: a deck card per read);
- a swipes file, one hex line per swipe, written beforehand by another process with
  `write_swipes`: the simulator then holds masked tracks and ciphertext only, never a clear
  card number (the P2PE demo scans the daemon's memory for the deck's numbers).
This module never imports the deck: callers hand it tracks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from drivers.card import dukpt
from drivers.card.carddata import EntryMode
from drivers.card.secure_formats import SwipeKeys, encode_enhanced, parse_enhanced
from drivers.errors import DriverError, OptionError
from drivers.sensitive import SecretStr
from wire.p2pe import DukptScheme

# The initial KSN (counter 0) of the simulated reader: the standards' test KSNs.
TEST_INITIAL_KSN = {
    DukptScheme.TDES_2KEY: bytes.fromhex("FFFF9876543210E00000"),
    DukptScheme.AES_128: bytes.fromhex("123456789012345600000000"),
}
TEST_BDK = {DukptScheme.TDES_2KEY: dukpt.TDES_TEST_BDK, DukptScheme.AES_128: dukpt.AES_TEST_BDK}
SIM_DEVICE_SERIAL = "SIMSEC0001"

Tracks = Mapping[int, SecretStr]


class SwipedCard(Protocol):
    """What the head needs of a card (a deck card is one, without this module importing the
    deck): how it is presented, and its tracks."""

    @property
    def entry_mode(self) -> EntryMode: ...

    @property
    def track1(self) -> SecretStr: ...

    @property
    def track2(self) -> SecretStr: ...


def magstripe_tracks(card: SwipedCard) -> dict[int, SecretStr]:
    return {1: card.track1, 2: card.track2}


def ksn_at(scheme: DukptScheme, counter: int, initial_ksn: bytes | None = None) -> bytes:
    """The KSN with this counter on the reader whose initial KSN is given (the test one by
    default); a counter no reader uses (too many one-bits) moves on to the next one that is."""
    base = TEST_INITIAL_KSN[scheme] if initial_ksn is None else initial_ksn
    ksn = (int.from_bytes(base, "big") | counter).to_bytes(scheme.ksn_bytes, "big")
    if counter == 0 or bin(counter).count("1") > dukpt.max_one_bits(scheme):
        ksn = dukpt.next_ksn(ksn, scheme)
    return ksn


class EncryptingHead:
    """A secure read head: each swipe is encrypted under the next KSN (the first under
    `first_ksn`). `DukptError` once the counter is exhausted, as a real head stops."""

    def __init__(self, bdk: bytes, scheme: DukptScheme, first_ksn: bytes, device_serial: str):
        dukpt.data_key(bdk, first_ksn, scheme)  # refuse bad keys now, not at the first swipe
        self._bdk, self._scheme, self._serial = bdk, scheme, device_serial
        self._next: bytes | None = first_ksn
        self._lock = threading.Lock()

    def swipe(self, tracks: Tracks) -> bytes:
        """The reader's bytes for a swipe of these tracks (none: a swipe it could not read)."""
        with self._lock:
            if self._next is None:
                raise dukpt.DukptError("DUKPT counter exhausted: the reader needs a new key")
            ksn = self._next
            try:
                self._next = dukpt.next_ksn(ksn, self._scheme)
            except dukpt.DukptError:
                self._next = None  # this swipe is the last one the key serves
        keys = SwipeKeys(self._bdk, ksn, self._scheme, self._serial)
        return encode_enhanced(dict(tracks), keys)


def magstripe_cards(cards: Iterable[SwipedCard]) -> list[SwipedCard]:
    """The cards a magstripe head can read (a deck also holds chip and contactless ones)."""
    return [card for card in cards if card.entry_mode is EntryMode.MAGSTRIPE]


def write_swipes(
    path: Path,
    cards: Iterable[SwipedCard],
    bdk: bytes,
    scheme: DukptScheme,
    first_ksn: bytes,
    device_serial: str = SIM_DEVICE_SERIAL,
) -> int:
    """Swipe each magstripe card (others are skipped) through a head with consecutive KSNs
    from `first_ksn`, into `path`, one hex line each: for a simulator that must not hold the
    clear cards (`swipes_file`). Returns the number of swipes written."""
    head = EncryptingHead(bdk, scheme, first_ksn, device_serial)
    lines = [head.swipe(magstripe_tracks(card)).hex() for card in magstripe_cards(cards)]
    path.write_text("".join(line + "\n" for line in lines), encoding="ascii")
    return len(lines)


def read_swipes(path: Path) -> list[bytes]:
    """The swipes of a file `write_swipes` made; `OptionError` (naming the line) for a line
    that is not a swipe, so a bad file stops the reader's start, not a payment."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise OptionError("swipes_file", f"cannot be read ({type(error).__name__})") from None
    swipes = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            swipe = bytes.fromhex(line)
            parse_enhanced(swipe)
        except (ValueError, DriverError):
            raise OptionError("swipes_file", f"line {number} is not a secure swipe") from None
        swipes.append(swipe)
    return swipes
