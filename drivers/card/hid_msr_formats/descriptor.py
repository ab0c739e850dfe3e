"""HID report descriptors, as far as a card reader needs them: the input fields it declares.

A reader's report descriptor (HID 1.11, section 6.2.2) says how its input reports are laid
out. The simulator sends one built here (`build_descriptor`), and the driver reads the
device's back (`input_fields`) to check, at open, that the reader lays out its reports the
way the chosen format expects, instead of misreading every swipe of a reader configured
otherwise. Only short items are interpreted: Usage Page, Report Size, Report ID, Report Count,
Push/Pop (global), Usage and Usage Minimum/Maximum (local), Input and Collection (main). Long
items are skipped. At most `MAX_USAGES_PER_ITEM` usages may precede a main item (a hostile
descriptor must not cost the terminal its memory). Any malformed descriptor raises
`ProtocolError` (never quoting bytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from drivers.errors import ProtocolError

# Item types and tags (HID 1.11, 6.2.2.4-6.2.2.8).
MAIN, GLOBAL, LOCAL = 0, 1, 2
INPUT, COLLECTION, END_COLLECTION = 0x8, 0xA, 0xC
USAGE_PAGE, LOGICAL_MINIMUM, LOGICAL_MAXIMUM = 0x0, 0x1, 0x2
REPORT_SIZE, REPORT_ID, REPORT_COUNT, PUSH, POP = 0x7, 0x8, 0x9, 0xA, 0xB
USAGE, USAGE_MINIMUM, USAGE_MAXIMUM = 0x0, 0x1, 0x2
LONG_ITEM = 0xFE
DATA_SIZES = (0, 1, 2, 4)  # the size code of a short item's prefix -> bytes of data
APPLICATION_COLLECTION = 0x01
INPUT_DATA_VARIABLE = 0x02  # Data, Variable, Absolute
INPUT_BUFFERED_BYTES = 0x0102  # ... and Buffered Bytes: a byte string (track data)
MAX_USAGES = 1024  # bounds a Usage Minimum/Maximum range
# Bounds the usages collected before a main item: repeated ranges would otherwise pile up
# without limit (a hostile 64 KiB descriptor of them is ~13 million usages).
MAX_USAGES_PER_ITEM = 4096
MAX_PUSH_DEPTH = 16
NO_REPORT_ID = 0
BITS_PER_BYTE = 8


@dataclass(frozen=True)
class InputField:
    """One Input main item: `count` values of `bits` bits each, with their usages."""

    report_id: int
    usage_page: int
    usages: tuple[int, ...]
    bits: int
    count: int

    @property
    def size_bits(self) -> int:
        return self.bits * self.count


@dataclass(frozen=True)
class _Globals:
    usage_page: int = 0
    report_id: int = NO_REPORT_ID
    report_size: int = 0
    report_count: int = 0


def _short_item(tag: int, item_type: int, value: int, width: int | None = None) -> bytes:
    size = width if width is not None else next(n for n in (1, 2, 4) if value < 1 << (8 * n))
    return bytes([tag << 4 | item_type << 2 | DATA_SIZES.index(size)]) + value.to_bytes(
        size, "little"
    )


def build_descriptor(
    usage_page: int, application_usage: int, fields: Iterable[InputField]
) -> bytes:
    """An application collection declaring `fields` (bytes 0-255 each) on `usage_page`."""
    out = bytearray()
    out += _short_item(USAGE_PAGE, GLOBAL, usage_page)
    out += _short_item(USAGE, LOCAL, application_usage)
    out += _short_item(COLLECTION, MAIN, APPLICATION_COLLECTION)
    out += _short_item(LOGICAL_MINIMUM, GLOBAL, 0)
    out += _short_item(LOGICAL_MAXIMUM, GLOBAL, 0xFF, width=2)  # 1 byte would read as -1
    report_id = NO_REPORT_ID
    for field in fields:
        if field.usage_page != usage_page:
            raise ValueError("every field must be on the collection's usage page")
        if field.report_id != report_id:
            out += _short_item(REPORT_ID, GLOBAL, field.report_id)
            report_id = field.report_id
        out += _short_item(REPORT_SIZE, GLOBAL, field.bits)
        for usage in field.usages:
            out += _short_item(USAGE, LOCAL, usage)
        out += _short_item(REPORT_COUNT, GLOBAL, field.count)
        buffered = len(field.usages) == 1 and field.count > 1
        out += _short_item(INPUT, MAIN, INPUT_BUFFERED_BYTES if buffered else INPUT_DATA_VARIABLE)
    out += bytes([END_COLLECTION << 4 | MAIN << 2])
    return bytes(out)


def _items(descriptor: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(offset, type, tag, unsigned value) of each short item; long items skipped."""
    offset = 0
    while offset < len(descriptor):
        prefix = descriptor[offset]
        if prefix == LONG_ITEM:
            if offset + 1 >= len(descriptor):
                raise ProtocolError(f"report descriptor: long item at byte {offset} is cut short")
            offset += 3 + descriptor[offset + 1]
            if offset > len(descriptor):
                raise ProtocolError("report descriptor: long item runs past the end")
            continue
        size = DATA_SIZES[prefix & 0x3]
        end = offset + 1 + size
        if end > len(descriptor):
            raise ProtocolError(f"report descriptor: item at byte {offset} is cut short")
        value = int.from_bytes(descriptor[offset + 1 : end], "little")
        yield offset, (prefix >> 2) & 0x3, prefix >> 4, value
        offset = end


def input_fields(descriptor: bytes) -> tuple[InputField, ...]:
    """The Input fields `descriptor` declares, in order. Raises `ProtocolError`."""
    state = _Globals()
    stack: list[_Globals] = []
    usages: list[int] = []
    usage_minimum: int | None = None
    depth = 0
    fields: list[InputField] = []
    for offset, item_type, tag, value in _items(descriptor):
        if item_type == GLOBAL:
            if tag == USAGE_PAGE:
                state = replace(state, usage_page=value)
            elif tag == REPORT_SIZE:
                state = replace(state, report_size=value)
            elif tag == REPORT_ID:
                state = replace(state, report_id=value)
            elif tag == REPORT_COUNT:
                state = replace(state, report_count=value)
            elif tag == PUSH:
                if len(stack) >= MAX_PUSH_DEPTH:
                    raise ProtocolError(f"report descriptor: Push too deep at byte {offset}")
                stack.append(state)
            elif tag == POP:
                if not stack:
                    raise ProtocolError(f"report descriptor: Pop without Push at byte {offset}")
                state = stack.pop()
        elif item_type == LOCAL:
            if tag == USAGE:
                usages.append(value)
            elif tag == USAGE_MINIMUM:
                usage_minimum = value
            elif tag == USAGE_MAXIMUM:
                if usage_minimum is None or not 0 <= value - usage_minimum < MAX_USAGES:
                    raise ProtocolError(f"report descriptor: bad usage range at byte {offset}")
                usages.extend(range(usage_minimum, value + 1))
            if len(usages) > MAX_USAGES_PER_ITEM:
                raise ProtocolError(
                    f"report descriptor: more than {MAX_USAGES_PER_ITEM} usages "
                    f"before a main item at byte {offset}"
                )
        elif item_type == MAIN:
            if tag == COLLECTION:
                depth += 1
            elif tag == END_COLLECTION:
                if depth == 0:
                    raise ProtocolError(
                        f"report descriptor: End Collection without Collection at byte {offset}"
                    )
                depth -= 1
            elif tag == INPUT:
                fields.append(
                    InputField(
                        state.report_id,
                        state.usage_page,
                        tuple(usages),
                        state.report_size,
                        state.report_count,
                    )
                )
            usages, usage_minimum = [], None
    if depth:
        raise ProtocolError("report descriptor: a collection is not closed")
    return tuple(fields)


def report_sizes(fields: Iterable[InputField]) -> dict[int, int]:
    """Report id -> bytes of that input report on the wire (the id byte included)."""
    bits: dict[int, int] = {}
    for field in fields:
        bits[field.report_id] = bits.get(field.report_id, 0) + field.size_bits
    return {
        report_id: -(-total // BITS_PER_BYTE) + (report_id != NO_REPORT_ID)
        for report_id, total in bits.items()
    }
