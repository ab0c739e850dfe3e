"""P2PE blocks as a secure reader makes them: a public test card's track 2, DUKPT-encrypted
under a test BDK the payment cryptography stand-in holds (`demo.localaws.payment_crypto`)."""

from __future__ import annotations

from drivers.card import dukpt
from drivers.card.deck import DECK_EXPIRY, DECK_SERVICE_CODE
from drivers.card.tracks import build_track2
from wire.p2pe import DukptScheme, EncryptedTrack, P2peBlock

# A first transaction of each scheme's test device (X9.24-1: 80-bit KSN; X9.24-3: BDK id,
# derivation id, counter).
TEST_KSNS = {
    DukptScheme.TDES_2KEY: bytes.fromhex("FFFF9876543210E00001"),
    DukptScheme.AES_128: bytes.fromhex("123456789012345600000001"),
}
TRACK2 = 2
DEVICE_SERIAL = "B2C0TEST0001"
READER_FORMAT = "idtech-enhanced"


def track2_of(pan: str) -> bytes:
    """Track 2 as the reader's head reads it (sentinels, no LRC), ASCII."""
    return build_track2(pan, DECK_EXPIRY, DECK_SERVICE_CODE, with_lrc=False).encode("ascii")


def encrypted_block(
    pan: str, scheme: DukptScheme, bdk: bytes, key_ref: str, ksn: bytes | None = None
) -> P2peBlock:
    """What the reader hands the host for a swipe of `pan`: track 2 under DUKPT."""
    clear = track2_of(pan)
    ksn = ksn if ksn is not None else TEST_KSNS[scheme]
    ciphertext = dukpt.encrypt(bdk, ksn, scheme, clear)
    track = EncryptedTrack(TRACK2, ciphertext, len(clear))
    return P2peBlock(scheme, ksn, key_ref, DEVICE_SERIAL, READER_FORMAT, (track,))


def ksn_for(scheme: DukptScheme, counter: int) -> bytes:
    """The test device's KSN at transaction `counter` (counters with few bits set: valid)."""
    base = int.from_bytes(TEST_KSNS[scheme], "big")
    counter_bits = 21 if scheme is DukptScheme.TDES_2KEY else 32
    value = (base >> counter_bits << counter_bits) | counter
    return value.to_bytes(scheme.ksn_bytes, "big")
