"""What a palm scanner returns: an opaque identity credential, never biometric data.

A scanner matches a palm against identities enrolled on the device (or its cloud) and gives
back the enrolled identity's opaque token or badge id plus a match confidence. The palm image
and its template never leave the device; nothing in this package can carry them.

The credential is sensitive (it identifies a person and may authorise a payment), so it
travels inside `PalmCredential`, whose `repr`/`str`/`format` hide it; `masked()` is the only
form meant for screens and logs, `reveal()` the only way to the clear value (for encryption).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from drivers.outcomes import Cancelled, Outcome, TimedOut
from drivers.sensitive import SecretStr
from wire.masking import mask_credential


class PalmCredential(SecretStr):
    """An enrolled identity's opaque token or badge id. `repr`/`str` show only its length."""

    __slots__ = ()

    def masked(self) -> str:
        """`****abcd`: the last few characters only (`wire.masking.mask_credential`)."""
        return mask_credential(self.reveal())


@dataclass(frozen=True)
class Matched:
    """A palm matched an enrolled identity. `confidence` is in [0, 1]."""

    credential: PalmCredential
    confidence: float
    outcome: ClassVar[Outcome] = Outcome.MATCH

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence must be between 0 and 1")


@dataclass(frozen=True)
class NoMatch:
    """A palm was presented but matched no enrolled identity."""

    outcome: ClassVar[Outcome] = Outcome.NO_MATCH


#: Every ordinary end of `PalmScanner.identify` (faults raise instead, see `drivers.base`).
IdentifyResult = Matched | NoMatch | Cancelled | TimedOut
