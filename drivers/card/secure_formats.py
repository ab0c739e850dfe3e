"""ID TECH's "Enhanced Encrypted MSR Data Output Format": a secure reader's swipe, as bytes.

Source: ID TECH SecureMag and SecureHead user manuals ("Enhanced Encryption Format", field
notes on the clear/masked and encrypted/hash sent-status bytes, "Track encrypted data"),
the same layout as ID TECH's SREDKey 2 and UniMag II manuals. One swipe is

    STX(02) LenL LenH <card data> CheckLRC CheckSum ETX(03)

with LenL/LenH the little-endian length of <card data>, CheckLRC its XOR and CheckSum its
byte sum (mod 256). <card data>:

    card encode type   0x80: ISO/ABA in the enhanced format (0x0x is the original format)
    track 1-3 status   bits 0-2: track decoded; bits 3-5: track sampled (a swipe was seen)
    T1, T2, T3 length  each track's clear length (the masked field's length too)
    masked status      bits 0-2: masked track present; bit 3: fixed key (else DUKPT);
                       bit 4: AES (else TDES); bit 5: chip card; bit 6: PIN key (else data
                       key); bit 7: serial number present
    encrypted status   bits 0-2: encrypted track present; bits 3-5: hash present;
                       bit 6: session id present; bit 7: KSN present
    masked T1, T2, T3  the first six and last four PAN digits in clear, the rest masked
    encrypted T1-T3    each track CBC-encrypted under the DUKPT data key, zero IV, zero
                       padded to whole blocks (`drivers.card.dukpt`)
    session id (8), hashes (20 each), serial number (10, ASCII), KSN (10 TDES / 12 AES)

Configuration it assumes, and refuses otherwise: DUKPT (not a fixed key), the data key (not
the PIN variant), six leading PAN digits in clear (PrePANID = 6; ID TECH's default is 4).
For AES the KSN is the X9.24-3 12-byte KSN. A swipe the reader could not decode (no track
decoded) parses to None: the cashier asks for the card again.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.card import dukpt
from drivers.card.carddata import EntryMode, Expiry
from drivers.card.encrypted import EncryptedCardData, MaskedPan
from drivers.card.iso7813 import COUNTRY_CODE_DIGITS, EXPIRY_DIGITS, needs_country_code
from drivers.card.tracks import END_SENTINEL, TRACK1, TRACK2
from drivers.errors import (
    CardConsistencyError,
    EncryptedFormatError,
    ExpiryError,
    ReaderEncryptionUnsupported,
    TrackFormatError,
)
from drivers.sensitive import SecretStr
from wire.masking import MASK_CHAR, mask_pan
from wire.p2pe import DukptScheme, EncryptedTrack

IDTECH_ENHANCED = "idtech-enhanced"

STX = 0x02
ETX = 0x03
HEADER_BYTES = 3  # STX LenL LenH
TRAILER_BYTES = 3  # CheckLRC CheckSum ETX
ENCODE_ISO_ENHANCED = 0x80
ENHANCED_FLAG = 0x80
FIXED_HEADER_BYTES = 7  # encode type, status, three lengths, two sent-status bytes
TRACKS = (1, 2, 3)
SAMPLED_SHIFT = 3
HASH_SHIFT = 3
FLAG_FIXED_KEY = 0x08
FLAG_AES = 0x10
FLAG_PIN_KEY = 0x40
FLAG_SERIAL = 0x80
FLAG_SESSION_ID = 0x40
FLAG_KSN = 0x80
SESSION_ID_BYTES = 8
HASH_BYTES = 20
SERIAL_BYTES = 10
SERIAL_PAD = "0"
BYTE_MASK = 0xFF


def frame_bytes(head: bytes) -> int | None:
    """The whole swipe's size, from its first bytes (None until the length field is in):
    what a transport that cuts the swipe into reports reassembles by."""
    if head and head[0] != STX:
        raise EncryptedFormatError("a secure swipe must begin with STX")
    if len(head) < HEADER_BYTES:
        return None
    return HEADER_BYTES + int.from_bytes(head[1:HEADER_BYTES], "little") + TRAILER_BYTES


# -- parse ---------------------------------------------------------------------------------


class _Cursor:
    """Reads the card data field by field; running short is a format error, named."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def take(self, count: int, field: str) -> bytes:
        if self._at + count > len(self._data):
            raise EncryptedFormatError(f"secure swipe ends inside its {field}")
        chunk = self._data[self._at : self._at + count]
        self._at += count
        return chunk

    def rest(self) -> int:
        return len(self._data) - self._at


def parse_enhanced(frame: bytes) -> EncryptedCardData | None:
    """One swipe -> the encrypted read (masked PAN, expiry if shown, encrypted tracks, KSN),
    or None for a swipe the reader could not decode. `EncryptedFormatError` for bytes that
    break the format, `ReaderEncryptionUnsupported` for a reader set up otherwise, a
    `CardDataError` for masked tracks that are not a card's (a PAN in clear among them)."""
    data = _unframe(frame)
    cursor = _Cursor(data)
    encode_type, status, *lengths, masked_flags, encrypted_flags = cursor.take(
        FIXED_HEADER_BYTES, "header"
    )
    if not encode_type & ENHANCED_FLAG:
        raise EncryptedFormatError("secure swipe is not in the enhanced format")
    if masked_flags & FLAG_FIXED_KEY:
        raise ReaderEncryptionUnsupported("reader encrypts under a fixed key, not DUKPT")
    if masked_flags & FLAG_PIN_KEY:
        raise ReaderEncryptionUnsupported("reader encrypts tracks under the PIN variant")
    scheme = DukptScheme.AES_128 if masked_flags & FLAG_AES else DukptScheme.TDES_2KEY
    masked = {
        track: cursor.take(length, f"masked track {track}")
        for track, length in zip(TRACKS, lengths, strict=True)
        if _bit(masked_flags, track)
    }
    encrypted = {
        track: EncryptedTrack(track, _take_encrypted(cursor, track, length, scheme), length)
        for track, length in zip(TRACKS, lengths, strict=True)
        if _bit(encrypted_flags, track)
    }
    if encrypted_flags & FLAG_SESSION_ID:
        cursor.take(SESSION_ID_BYTES, "session id")
    for track in TRACKS:
        if _bit(encrypted_flags >> HASH_SHIFT, track):
            cursor.take(HASH_BYTES, f"track {track} hash")
    serial = _serial(cursor.take(SERIAL_BYTES, "serial")) if masked_flags & FLAG_SERIAL else ""
    ksn = cursor.take(scheme.ksn_bytes, "KSN") if encrypted_flags & FLAG_KSN else None
    if cursor.rest():
        raise EncryptedFormatError(f"secure swipe has {cursor.rest()} bytes after its last field")
    if encode_type != ENCODE_ISO_ENHANCED:
        raise TrackFormatError("the reader read a card that is not an ISO/ABA payment card")
    if not (_bit(status, 1) or _bit(status, 2)):
        return None
    if not encrypted or ksn is None:
        raise ReaderEncryptionUnsupported("reader sent a swipe without encrypted tracks or KSN")
    pan, expiry = _masked_fields(masked)
    return EncryptedCardData(
        entry_mode=EntryMode.MAGSTRIPE,
        pan=pan,
        tracks=tuple(encrypted.values()),
        ksn=ksn,
        scheme=scheme,
        device_serial=serial,
        format=IDTECH_ENHANCED,
        expiry=expiry,
    )


def _unframe(frame: bytes) -> bytes:
    size = frame_bytes(frame[:HEADER_BYTES])
    if size is None or len(frame) < HEADER_BYTES + TRAILER_BYTES:
        raise EncryptedFormatError("secure swipe is shorter than its frame")
    if size != len(frame):
        raise EncryptedFormatError(
            f"secure swipe length field says {size} bytes, the swipe is {len(frame)}"
        )
    if frame[-1] != ETX:
        raise EncryptedFormatError("secure swipe must end with ETX")
    data = frame[HEADER_BYTES:-TRAILER_BYTES]
    lrc, checksum = frame[-TRAILER_BYTES], frame[-TRAILER_BYTES + 1]
    if lrc != _lrc(data):
        raise EncryptedFormatError("secure swipe LRC does not match its card data")
    if checksum != _checksum(data):
        raise EncryptedFormatError("secure swipe checksum does not match its card data")
    return data


def _take_encrypted(cursor: _Cursor, track: int, length: int, scheme: DukptScheme) -> bytes:
    if not length:
        raise EncryptedFormatError(f"secure swipe encrypts track {track} of length 0")
    return cursor.take(_padded(length, scheme), f"encrypted track {track}")


def _serial(raw: bytes) -> str:
    if not all(0x20 < byte < 0x7F for byte in raw):
        raise EncryptedFormatError("secure swipe serial number is not printable ASCII")
    return raw.decode("ascii")


def _masked_fields(masked: dict[int, bytes]) -> tuple[MaskedPan, Expiry | None]:
    """The masked PAN and expiry from track 2, else track 1; both present must agree."""
    fields = [_masked_track(track, masked[track]) for track in (2, 1) if track in masked]
    if not fields:
        raise TrackFormatError("secure swipe holds no masked track 1 or 2")
    pan, expiry = fields[0]
    if any(other != pan for other, _ in fields[1:]):
        raise CardConsistencyError("masked tracks 1 and 2 show different card numbers")
    return pan, expiry


def _masked_track(track: int, raw: bytes) -> tuple[MaskedPan, Expiry | None]:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise TrackFormatError(f"masked track {track} is not ASCII") from None
    encoding = TRACK2 if track == 2 else TRACK1
    skip = 1 if track == 2 else 2  # start sentinel (and track 1's format code)
    if not text.startswith(encoding.start) or encoding.separator not in text[skip:]:
        raise TrackFormatError(f"masked track {track} has no start sentinel or separator")
    pan_text, _, rest = text[skip:].partition(encoding.separator)
    pan = MaskedPan.parse(pan_text)
    if track == 1:
        rest = rest.partition(encoding.separator)[2]  # after the name
    elif needs_country_code(pan.bin):
        rest = rest[COUNTRY_CODE_DIGITS:]
    return pan, _shown_expiry(rest[:EXPIRY_DIGITS])


def _shown_expiry(shown: str) -> Expiry | None:
    """The expiry if the reader shows a YYMM; else it masked it, with any of its mask
    characters (`0000` from a reader masking with zeros): not shown, never an error."""
    try:
        return Expiry.parse_yymm(shown)
    except ExpiryError:
        return None


# -- encode (the simulator's side) ---------------------------------------------------------


@dataclass(frozen=True)
class SwipeKeys:
    """What an encoding reader holds: its DUKPT key, this swipe's KSN, its serial number."""

    bdk: bytes
    ksn: bytes
    scheme: DukptScheme
    device_serial: str


def encode_enhanced(
    tracks: dict[int, SecretStr],
    keys: SwipeKeys,
    *,
    clear_expiry: bool = False,
    null_hashes: bool = False,
) -> bytes:
    """The swipe a reader sends for these clear tracks (number -> text as on the stripe):
    masked, encrypted under `keys`, framed. No tracks: a swipe the reader could not decode.
    `null_hashes` adds the twenty zero bytes per track some firmware sends for hashes."""
    scheme = keys.scheme
    clear = {number: tracks[number].reveal() for number in TRACKS if number in tracks}
    lengths = bytes(len(clear.get(number, "")) for number in TRACKS)
    present = sum(1 << (number - 1) for number in clear)
    masked_flags = present | FLAG_SERIAL | (FLAG_AES if scheme is DukptScheme.AES_128 else 0)
    encrypted_flags = present | (present << HASH_SHIFT if null_hashes else 0)
    encrypted_flags |= FLAG_KSN if clear else 0
    # a swipe the head saw (track 1 sampled at least) but could not decode has no track
    status = present | (present << SAMPLED_SHIFT) if clear else 1 << SAMPLED_SHIFT
    body = [
        bytes([ENCODE_ISO_ENHANCED, status]),
        lengths,
        bytes([masked_flags, encrypted_flags]),
        *(mask_track(text, clear_expiry=clear_expiry).encode("ascii") for text in clear.values()),
        *(
            dukpt.encrypt(keys.bdk, keys.ksn, scheme, text.encode("ascii"))
            for text in clear.values()
        ),
        bytes(HASH_BYTES * len(clear)) if null_hashes else b"",
        keys.device_serial.rjust(SERIAL_BYTES, SERIAL_PAD).encode("ascii"),
        keys.ksn if clear else b"",
    ]
    return frame(b"".join(body))


def frame(data: bytes) -> bytes:
    """STX, length, the card data, its LRC and checksum, ETX."""
    return (
        bytes([STX])
        + len(data).to_bytes(2, "little")
        + data
        + bytes([_lrc(data), _checksum(data), ETX])
    )


def mask_track(text: str, *, clear_expiry: bool = False) -> str:
    """A track as the reader shows it: sentinels, separators, format code and name kept,
    the PAN's first six and last four digits, the expiry if `clear_expiry`, every other
    character (the LRC too) replaced by the mask character."""
    is_track1 = text.startswith(TRACK1.start)
    encoding = TRACK1 if is_track1 else TRACK2
    head = text[: 2 if is_track1 else 1]
    pan, _, rest = text[len(head) :].partition(encoding.separator)
    kept = ""
    if is_track1:
        name, _, rest = rest.partition(encoding.separator)
        kept = name + encoding.separator
    elif needs_country_code(pan):
        kept, rest = rest[:COUNTRY_CODE_DIGITS], rest[COUNTRY_CODE_DIGITS:]
    fields, sentinel, lrc = rest.partition(END_SENTINEL)
    shown = fields[:EXPIRY_DIGITS] if clear_expiry else ""
    hidden = MASK_CHAR * (len(fields) - len(shown))
    return (
        f"{head}{mask_pan(pan)}{encoding.separator}{kept}{shown}{hidden}"
        f"{sentinel}{MASK_CHAR * len(lrc)}"
    )


# -- shared --------------------------------------------------------------------------------


def _bit(flags: int, track: int) -> bool:
    return bool(flags >> (track - 1) & 1)


def _padded(length: int, scheme: DukptScheme) -> int:
    return -(-length // scheme.block_bytes) * scheme.block_bytes


def _lrc(data: bytes) -> int:
    result = 0
    for byte in data:
        result ^= byte
    return result


def _checksum(data: bytes) -> int:
    return sum(data) & BYTE_MASK
