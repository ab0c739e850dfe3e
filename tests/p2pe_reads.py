"""Encrypted card reads for tests, as a secure reader would hand them over (no DUKPT: the
"ciphertext" is random bytes of the right shape; the terminal never decrypts it anyway)."""

from __future__ import annotations

import os

from drivers.card.carddata import EntryMode, Expiry
from drivers.card.encrypted import EncryptedCardData, MaskedPan
from drivers.card.results import EncryptedCardRead
from wire.masking import mask_pan
from wire.p2pe import DukptScheme, EncryptedTrack

DEVICE_SERIAL = "B5A0123456"
FORMAT = "idtech-enhanced"
TRACK2_CLEAR_LENGTH = 37
# An ANSI X9.24-1 KSN: key set id, device id, counter 1.
TDES_KSN = bytes.fromhex("FFFF9876543210E00001")


def encrypted_card(
    pan: str,
    expiry: str | None = "3012",
    ksn: bytes = TDES_KSN,
    scheme: DukptScheme = DukptScheme.TDES_2KEY,
) -> EncryptedCardData:
    """The masked form of `pan` (a public test number) and a random encrypted track 2."""
    blocks = -(-TRACK2_CLEAR_LENGTH // scheme.block_bytes)
    track = EncryptedTrack(2, os.urandom(blocks * scheme.block_bytes), TRACK2_CLEAR_LENGTH)
    return EncryptedCardData(
        entry_mode=EntryMode.MAGSTRIPE,
        pan=MaskedPan.parse(mask_pan(pan)),
        tracks=(track,),
        ksn=ksn,
        scheme=scheme,
        device_serial=DEVICE_SERIAL,
        format=FORMAT,
        expiry=Expiry.parse_yymm(expiry) if expiry is not None else None,
    )


def encrypted_read(pan: str, expiry: str | None = "3012") -> EncryptedCardRead:
    return EncryptedCardRead(encrypted_card(pan, expiry))
