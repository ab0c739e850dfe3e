"""What every HID card-reader report layout provides, and the assembler they share.

A layout declares its input fields (the report descriptor the reader sends is built from
them, and the device's is checked against them) and knows how reports make one swipe. The
input reports of a swipe reach the host in interrupt transfers of at most the host's read size
(`packets`), and a report whose last packet is full-size does not end its transfer, so one
transfer may also carry the start of the next report. `ReportAssembler` therefore reads the
transfers as one byte stream cut into whole reports (their size follows from the fields and,
with report ids, the first byte), then asks the layout whether the reports so far are a whole
swipe. A swipe is checked (`parse`) before it is handed on, so a
malformed one ends as `ProtocolError` in the assembler (the reader returns `CardUnreadable`)
and never as a fault of `_decode`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import StrEnum
from functools import cached_property
from typing import ClassVar

from drivers.card.hid_msr_formats.descriptor import (
    NO_REPORT_ID,
    InputField,
    build_descriptor,
    input_fields,
    report_sizes,
)
from drivers.card.hid_msr_formats.swipe import MsrSwipe
from drivers.card.hid_reader import MAX_REPORT_SIZE, SwipeAssembler
from drivers.card.report_gap import REPORT_GAP_S, ReportGap
from drivers.errors import ProtocolError


class ReportFormat(StrEnum):
    """The layouts by name (the `report_format` option: a closed set, checked at config load)."""

    HID_POS = "hid-pos"
    MAGTEK = "magtek"


class MsrLayout(ABC):
    """A report layout: descriptor fields, swipe boundaries, encoding and parsing."""

    name: ClassVar[ReportFormat]
    usage_page: ClassVar[int]
    application_usage: ClassVar[int]
    fields: ClassVar[tuple[InputField, ...]]

    @cached_property
    def report_descriptor(self) -> bytes:
        """The report descriptor a reader of this layout declares."""
        return build_descriptor(self.usage_page, self.application_usage, self.fields)

    @cached_property
    def sizes(self) -> dict[int, int]:
        """Report id (0: no ids) -> bytes of that input report."""
        return report_sizes(self.fields)

    def report_size(self, start: bytes) -> int:
        """The size of the report that begins with `start` (at least one byte)."""
        report_id = NO_REPORT_ID if NO_REPORT_ID in self.sizes else start[0]
        size = self.sizes.get(report_id)
        if size is None:
            raise ProtocolError(f"{self.name}: input report with unknown report id {report_id}")
        return size

    def split(self, data: bytes) -> list[bytes]:
        """Whole reports, back to back, split again. Raises `ProtocolError`."""
        reports: list[bytes] = []
        offset = 0
        while offset < len(data):
            size = self.report_size(data[offset:])
            if offset + size > len(data):
                raise ProtocolError(f"{self.name}: input report cut short")
            reports.append(data[offset : offset + size])
            offset += size
        return reports

    def check_descriptor(self, descriptor: bytes) -> None:
        """`ProtocolError` unless the device declares exactly this layout's input fields."""
        if input_fields(descriptor) != self.fields:
            raise ProtocolError(
                f"the reader's report descriptor does not declare the {self.name} layout"
                " (set report_format to the reader's)"
            )

    def assembler(self) -> ReportAssembler:
        return ReportAssembler(self)

    @abstractmethod
    def swipe_complete(self, reports: Sequence[bytes]) -> bool:
        """Whether `reports` (whole, in order) make a swipe; `ProtocolError` if they cannot
        begin one."""

    @abstractmethod
    def parse(self, swipe: bytes) -> MsrSwipe:
        """A swipe's reports, back to back, as tracks. Raises `ProtocolError`."""

    @abstractmethod
    def encode(self, swipe: MsrSwipe) -> list[bytes]:
        """The input reports a reader sends for `swipe` (the simulator's side). Raises
        `TrackFormatError` for a track the report cannot carry."""


def packets(report: bytes, max_packet: int = MAX_REPORT_SIZE) -> list[bytes]:
    """A report as the interrupt transfers that carry it (a short packet ends it)."""
    return [report[i : i + max_packet] for i in range(0, len(report), max_packet)]


class ReportAssembler(SwipeAssembler):
    """Transfers -> reports -> a checked swipe, for any `MsrLayout`."""

    def __init__(self, layout: MsrLayout, gap_s: float = REPORT_GAP_S) -> None:
        self._layout = layout
        self._gap = ReportGap(gap_s)
        self._partial = bytearray()
        self._reports: list[bytes] = []

    def feed(self, report: bytes, now: float) -> bytes | None:
        self.expire(now)
        self._gap.report(now)
        self._partial += report
        while self._partial:
            size = self._layout.report_size(bytes(self._partial[:1]))
            if len(self._partial) < size:
                return None
            self._reports.append(bytes(self._partial[:size]))
            del self._partial[:size]
            if self._layout.swipe_complete(self._reports):
                swipe = b"".join(self._reports)
                self._reports.clear()
                self._layout.parse(swipe)
                return swipe
        return None

    @property
    def quiet_s(self) -> float:
        return self._gap.seconds

    def expire(self, now: float) -> bytes | None:
        """A swipe cut short (reports lost on the way) is dropped after `gap_s` of silence."""
        if self._gap.passed(now):
            self.reset()
        return None

    @property
    def in_progress(self) -> bool:
        return bool(self._partial or self._reports)

    def reset(self) -> None:
        self._partial.clear()
        self._reports.clear()
        self._gap.clear()
