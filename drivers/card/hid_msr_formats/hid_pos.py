"""The HID Point of Sale layout: usage page 0x8E, Magnetic Stripe Reading (MSR) Devices.

Source: USB-IF, "HID Point of Sale Usage Tables" 1.02 (pos1_02.pdf), usage page 0x8E: MSR
Device Read-Only (0x01, application collection), Track 1/2/3 Length (0x11-0x13, dynamic
values), Track 1/2/3 Data (0x21-0x23, buffered bytes); the same usage ids are in the
HID Usage Tables' 0x8E page, Apple's HIDDriverKit `kHIDUsage_MSR_*` and Haiku's
`USB_hid_page_magnetic_stripe_reader.h`.

The tables name the usages, not a report: what is implemented here is what a 0x8E reader
declares with report ids, one report per item, all bytes 0-255:

| report id | usages | size | content |
|---|---|---|---|
| 1 | Track 1, 2, 3 Length | 3 x 8 bits | bytes of each track's data; 0: no data |
| 2 | Track 1 Data | 79 x 8 bits | ASCII, sentinels (and LRC if sent) included |
| 3 | Track 2 Data | 40 x 8 bits | idem |
| 4 | Track 3 Data | 107 x 8 bits | idem |

A swipe is the lengths report, then one data report per track with a non-zero length, in
track order (the fields are the ISO/IEC 7813 and 4909 maxima). The page has no decode-status
usage: a track the reader could not decode is reported as its start sentinel, `E` and the end
sentinel (`%E?`, `;E?`, `+E?`; `swipe_text.is_read_error`), as MagTek's readers print it ("If
there is an error in one of the tracks, the Track Data field will be replaced with E", e.g.
the RS-232 swipe reader manuals). A length beyond its field, a data report not announced or
out of order, or a swipe that is not a lengths report are malformed (`ProtocolError`).
"""

from __future__ import annotations

from collections.abc import Sequence

from drivers.card.hid_msr_formats.descriptor import InputField
from drivers.card.hid_msr_formats.layout import MsrLayout, ReportFormat
from drivers.card.hid_msr_formats.swipe import (
    DECODE_ERROR,
    NOT_PRESENT,
    MsrSwipe,
    TrackRead,
    field_bytes,
    track_from_bytes,
)
from drivers.card.swipe_text import is_read_error, read_error_mark
from drivers.card.tracks import TRACK1_MAX_CHARS, TRACK2_MAX_CHARS, TRACK3_MAX_CHARS
from drivers.errors import ProtocolError

MSR_USAGE_PAGE = 0x8E
MSR_DEVICE_READ_ONLY = 0x01
TRACK_LENGTH_USAGES = (0x11, 0x12, 0x13)
TRACK_DATA_USAGES = (0x21, 0x22, 0x23)
LENGTHS_REPORT_ID = 1
DATA_REPORT_IDS = (2, 3, 4)
TRACK_FIELD_SIZES = (TRACK1_MAX_CHARS, TRACK2_MAX_CHARS, TRACK3_MAX_CHARS)
BYTE = 8


class HidPosLayout(MsrLayout):
    name = ReportFormat.HID_POS
    usage_page = MSR_USAGE_PAGE
    application_usage = MSR_DEVICE_READ_ONLY
    fields = (
        InputField(LENGTHS_REPORT_ID, MSR_USAGE_PAGE, TRACK_LENGTH_USAGES, BYTE, 3),
        *(
            InputField(report_id, MSR_USAGE_PAGE, (usage,), BYTE, size)
            for report_id, usage, size in zip(
                DATA_REPORT_IDS, TRACK_DATA_USAGES, TRACK_FIELD_SIZES, strict=True
            )
        ),
    )

    def _lengths(self, report: bytes) -> tuple[int, ...]:
        if report[0] != LENGTHS_REPORT_ID:
            raise ProtocolError(f"{self.name}: a swipe must begin with the track lengths report")
        lengths = tuple(report[1 : 1 + len(TRACK_FIELD_SIZES)])
        for number, (length, size) in enumerate(zip(lengths, TRACK_FIELD_SIZES, strict=True), 1):
            if length > size:
                raise ProtocolError(
                    f"{self.name}: track {number} length {length} exceeds its {size}-byte field"
                )
        return lengths

    def _announced(self, lengths: Sequence[int]) -> list[int]:
        return [rid for rid, length in zip(DATA_REPORT_IDS, lengths, strict=True) if length]

    def swipe_complete(self, reports: Sequence[bytes]) -> bool:
        expected = self._announced(self._lengths(reports[0]))
        received = [report[0] for report in reports[1:]]
        if received != expected[: len(received)]:
            raise ProtocolError(f"{self.name}: track data report not announced or out of order")
        return len(received) == len(expected)

    def parse(self, swipe: bytes) -> MsrSwipe:
        reports = self.split(swipe)
        if not reports or not self.swipe_complete(reports):
            raise ProtocolError(f"{self.name}: swipe is missing track data reports")
        data = {report[0]: report[1:] for report in reports[1:]}
        tracks: list[TrackRead] = []
        for report_id, length in zip(DATA_REPORT_IDS, self._lengths(reports[0]), strict=True):
            if not length:
                tracks.append(NOT_PRESENT)
                continue
            text = track_from_bytes(data[report_id][:length])
            tracks.append(DECODE_ERROR if is_read_error(text.reveal()) else TrackRead(text=text))
        return MsrSwipe(*tracks)

    def encode(self, swipe: MsrSwipe) -> list[bytes]:
        lengths = bytearray([LENGTHS_REPORT_ID])
        data_reports: list[bytes] = []
        for number, track in enumerate(swipe.tracks, start=1):
            index = number - 1
            text = track.text.reveal() if track.decoded else read_error_mark(number)
            if track.decoded and is_read_error(text):
                raise ValueError(f"track {number}: decoded text cannot be the error mark")
            raw = field_bytes(text, number, TRACK_FIELD_SIZES[index])
            lengths.append(len(raw))
            if raw:
                field = raw.ljust(TRACK_FIELD_SIZES[index], b"\0")
                data_reports.append(bytes([DATA_REPORT_IDS[index]]) + field)
        return [bytes(lengths), *data_reports]
