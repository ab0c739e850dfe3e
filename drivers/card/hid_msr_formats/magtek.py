"""MagTek's HID swipe-reader layout: one fixed 337-byte input report per swipe.

Source: MagTek, "USB HID Swipe Reader Technical Reference Manual", part 99875191 (section 4,
USB Communications: report descriptor, input report, decode status, card encode type); the
same report is in MagTek's mini and full-size swipe reader manuals. Public parsers read it the
same way (Micah Carrick's magtek-pyusb: vendor 0x0801, product 0x0002, 337 bytes).

Vendor usage page 0xFF00, application collection "decoding reader device" (usage 1), one input
report without report id:

| offset | size | usage | field |
|---|---|---|---|
| 0, 1, 2 | 1 each | 0x20-0x22 | track 1-3 decode status: bit 0 set = decode error |
| 3, 4, 5 | 1 each | 0x28-0x2A | track 1-3 data length (0 if no data or an error) |
| 6 | 1 | 0x38 | card encode type (0 ISO/ABA, 1 AAMVA, 3 blank, 4 other, 5 undetermined...) |
| 7, 117, 227 | 110 each | 0x30-0x32 | track 1-3 data: ASCII, start through end sentinel |

Bytes past a track's length are undefined and ignored; a length beyond the 110-byte field is
a malformed report (`ProtocolError`). The encode type is informative only: the tracks
themselves say whether the card is a payment card.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from drivers.card.hid_msr_formats.descriptor import NO_REPORT_ID, InputField
from drivers.card.hid_msr_formats.layout import MsrLayout, ReportFormat
from drivers.card.hid_msr_formats.swipe import (
    DECODE_ERROR,
    MsrSwipe,
    TrackRead,
    field_bytes,
    track_from_bytes,
)
from drivers.errors import ProtocolError

MAGTEK_VENDOR_ID = 0x0801
MAGTEK_HID_SWIPE_PRODUCT_ID = 0x0002
VENDOR_USAGE_PAGE = 0xFF00
DECODING_READER_DEVICE = 0x01
DECODE_STATUS_USAGES = (0x20, 0x21, 0x22)
DATA_LENGTH_USAGES = (0x28, 0x29, 0x2A)
CARD_ENCODE_TYPE_USAGE = 0x38
TRACK_DATA_USAGES = (0x30, 0x31, 0x32)
TRACK_FIELD_SIZE = 110
DECODE_ERROR_BIT = 0x01
HEADER_SIZE = 7
STATUS_OFFSET, LENGTH_OFFSET = 0, 3
BYTE = 8


class CardEncodeType(IntEnum):
    ISO_ABA = 0
    AAMVA = 1
    BLANK = 3
    OTHER = 4
    UNDETERMINED = 5


class MagTekLayout(MsrLayout):
    name = ReportFormat.MAGTEK
    usage_page = VENDOR_USAGE_PAGE
    application_usage = DECODING_READER_DEVICE
    fields = (
        InputField(
            NO_REPORT_ID,
            VENDOR_USAGE_PAGE,
            (*DECODE_STATUS_USAGES, *DATA_LENGTH_USAGES, CARD_ENCODE_TYPE_USAGE),
            BYTE,
            HEADER_SIZE,
        ),
        *(
            InputField(NO_REPORT_ID, VENDOR_USAGE_PAGE, (usage,), BYTE, TRACK_FIELD_SIZE)
            for usage in TRACK_DATA_USAGES
        ),
    )

    def swipe_complete(self, reports: Sequence[bytes]) -> bool:
        return len(reports) == 1

    def parse(self, swipe: bytes) -> MsrSwipe:
        size = self.sizes[NO_REPORT_ID]
        if len(swipe) != size:
            raise ProtocolError(f"{self.name}: a swipe is one {size}-byte report")
        tracks: list[TrackRead] = []
        for index in range(len(TRACK_DATA_USAGES)):
            status = swipe[STATUS_OFFSET + index]
            length = swipe[LENGTH_OFFSET + index]
            if length > TRACK_FIELD_SIZE:
                raise ProtocolError(
                    f"{self.name}: track {index + 1} length {length} exceeds its"
                    f" {TRACK_FIELD_SIZE}-byte field"
                )
            if status & DECODE_ERROR_BIT:
                tracks.append(DECODE_ERROR)
                continue
            start = HEADER_SIZE + index * TRACK_FIELD_SIZE
            tracks.append(TrackRead(text=track_from_bytes(swipe[start : start + length])))
        return MsrSwipe(*tracks)

    def encode(self, swipe: MsrSwipe) -> list[bytes]:
        statuses, lengths, data = bytearray(), bytearray(), bytearray()
        for number, track in enumerate(swipe.tracks, start=1):
            text = field_bytes(track.text.reveal(), number, TRACK_FIELD_SIZE)
            statuses.append(0 if track.decoded else DECODE_ERROR_BIT)
            lengths.append(len(text))
            data += text.ljust(TRACK_FIELD_SIZE, b"\0")
        return [bytes(statuses + lengths) + bytes([_encode_type(swipe)]) + bytes(data)]


def _encode_type(swipe: MsrSwipe) -> CardEncodeType:
    if any(track.read for track in swipe.tracks):
        return CardEncodeType.ISO_ABA
    if all(track.decoded for track in swipe.tracks):
        return CardEncodeType.BLANK
    return CardEncodeType.UNDETERMINED
