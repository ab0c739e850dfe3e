"""An encrypted card read: what a secure (P2PE) reader hands the host instead of a card number.

The reader encrypts the tracks in its head (DUKPT, `drivers.card.dukpt` is the simulator's
side of it) and gives the host masked tracks: the first six and last four digits of the PAN,
sometimes the expiry and the cardholder name, and the encrypted block. Nothing in the
terminal can decrypt the block; `posd decode` and every output show the masked fields only.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.card.brands import Brand, brand_of
from drivers.card.carddata import EntryMode, Expiry
from drivers.errors import PanFormatError
from wire.masking import MASK_CHAR, MASK_KEEP_FIRST, MASK_KEEP_LAST, PAN_MAX_DIGITS, PAN_MIN_DIGITS
from wire.p2pe import DukptScheme, EncryptedTrack

# Readers mask with a character of their own ('*' by default on ID TECH, '0' on MagTek's
# masked track 2); the terminal rewrites every mask to MASK_CHAR.
READER_MASK_CHARS = frozenset("*0#X")


@dataclass(frozen=True)
class MaskedPan:
    """First six and last four digits of a PAN and its length; never the middle digits."""

    bin: str
    last4: str
    length: int

    def __post_init__(self) -> None:
        if not (self.bin.isascii() and self.bin.isdigit() and len(self.bin) == MASK_KEEP_FIRST):
            raise PanFormatError("masked card number must show six leading digits")
        if not (
            self.last4.isascii() and self.last4.isdigit() and len(self.last4) == MASK_KEEP_LAST
        ):
            raise PanFormatError("masked card number must show four trailing digits")
        if not PAN_MIN_DIGITS <= self.length <= PAN_MAX_DIGITS:
            raise PanFormatError(
                f"card number must be {PAN_MIN_DIGITS}-{PAN_MAX_DIGITS} digits, got {self.length}"
            )

    @classmethod
    def parse(cls, text: str) -> MaskedPan:
        """`411111******1111` (any of `READER_MASK_CHARS` in the middle) -> MaskedPan.

        A text with more than the BIN and last four in clear is refused, not masked again:
        a reader that sends a clear PAN in its "masked" field is misconfigured, and the
        terminal must not take it (`PanFormatError`, which never quotes the digits)."""
        middle = text[MASK_KEEP_FIRST:-MASK_KEEP_LAST]
        if not middle or any(char not in READER_MASK_CHARS for char in middle):
            raise PanFormatError("masked card number must mask every digit but 6 + 4")
        return cls(text[:MASK_KEEP_FIRST], text[-MASK_KEEP_LAST:], len(text))

    @property
    def masked(self) -> str:
        return self.bin + MASK_CHAR * (self.length - MASK_KEEP_FIRST - MASK_KEEP_LAST) + self.last4

    @property
    def brand(self) -> Brand:
        """From the BIN: a brand whose IIN ranges go deeper than six digits may show UNKNOWN."""
        return brand_of(self.bin)

    def __str__(self) -> str:
        return self.masked


@dataclass(frozen=True)
class EncryptedCardData:
    """One card read by an encrypting reader: masked fields in clear, tracks encrypted."""

    entry_mode: EntryMode
    pan: MaskedPan
    tracks: tuple[EncryptedTrack, ...]
    ksn: bytes
    scheme: DukptScheme
    device_serial: str
    format: str  # the reader's output format, e.g. "idtech-enhanced"
    expiry: Expiry | None = None

    @property
    def brand(self) -> Brand:
        return self.pan.brand

    def clear_metadata(self) -> dict[str, str]:
        """What may be stored in clear next to the encrypted payload (same keys as CardData)."""
        return {
            "brand": self.brand.value,
            "masked_pan": self.pan.masked,
            "entry_mode": self.entry_mode.value,
        }


# At this fraction of its transaction counters a DUKPT reader is reported as nearly exhausted.
KSN_EXHAUSTION_WARNING = 0.9


@dataclass(frozen=True)
class P2peStatus:
    """What an encrypting reader says about its encryption (safe to show: a KSN is no secret).

    `counter_used` is the fraction of the device's usable DUKPT transaction counters spent
    (`drivers.card.dukpt.counter_exhaustion` of its latest KSN), None before the first read."""

    scheme: DukptScheme
    format: str
    last_ksn: bytes | None = None
    counter_used: float | None = None

    @property
    def nearly_exhausted(self) -> bool:
        return self.counter_used is not None and self.counter_used >= KSN_EXHAUSTION_WARNING
