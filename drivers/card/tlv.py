"""BER-TLV as used by EMV (EMV Book 3 annex B): multi-byte tags, short/long lengths, nesting.

- Tag: first byte's low five bits all set means more tag bytes follow, each with bit 8 set
  while another follows. Bit 6 of the first byte marks a constructed (template) tag whose value
  is itself a TLV list. Tags are kept as `int` (0x9F02) for readable comparisons.
- Length: below 0x80 is the length itself; 0x81-0x84 say how many length bytes follow.
  Indefinite length (0x80) is not used by EMV and is rejected.
- 0x00 and 0xFF bytes between objects are padding (EMV allows them) and are skipped.

Every error is a `TlvError` with the byte offset where the input stopped making sense:
truncated tags, lengths or values; lengths that overrun the enclosing template; nesting deeper
than `MAX_DEPTH`. Messages give tags and offsets, never values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from drivers.errors import TlvError

MAX_TAG_BYTES = 4
MAX_LENGTH_BYTES = 4
MAX_DEPTH = 16
SHORT_LENGTH_LIMIT = 0x80
LONG_LENGTH_FLAG = 0x80
CONSTRUCTED_BIT = 0x20
MULTI_BYTE_TAG_MASK = 0x1F
MORE_TAG_BYTES_BIT = 0x80
PADDING_BYTES = frozenset({0x00, 0xFF})


@dataclass(frozen=True, repr=False)
class Tlv:
    """One data object. Primitive: `value` holds the bytes. Constructed: `children`."""

    tag: int
    value: bytes = b""
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        return is_constructed(self.tag)

    def __repr__(self) -> str:
        # Values may be card data: show structure only.
        if self.constructed:
            return f"Tlv({tag_hex(self.tag)}, children={list(self.children)!r})"
        return f"Tlv({tag_hex(self.tag)}, <{len(self.value)} bytes>)"

    __str__ = __repr__


def tag_bytes(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def tag_hex(tag: int) -> str:
    return tag_bytes(tag).hex().upper()


def is_constructed(tag: int) -> bool:
    return bool(tag_bytes(tag)[0] & CONSTRUCTED_BIT)


def valid_tag(tag: int) -> bool:
    """True if `tag`'s bytes are a well-formed BER tag of at most `MAX_TAG_BYTES` bytes."""
    raw = tag_bytes(tag)
    if len(raw) > MAX_TAG_BYTES or raw[0] in PADDING_BYTES:
        return False
    if len(raw) == 1:
        return raw[0] & MULTI_BYTE_TAG_MASK != MULTI_BYTE_TAG_MASK
    if raw[0] & MULTI_BYTE_TAG_MASK != MULTI_BYTE_TAG_MASK:
        return False
    return all(b & MORE_TAG_BYTES_BIT for b in raw[1:-1]) and not raw[-1] & MORE_TAG_BYTES_BIT


def encode_length(length: int) -> bytes:
    if length < 0:
        raise ValueError("negative length")
    if length < SHORT_LENGTH_LIMIT:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(body) > MAX_LENGTH_BYTES:
        raise ValueError("length too large for BER-TLV")
    return bytes([LONG_LENGTH_FLAG | len(body)]) + body


def encode(objects: Sequence[Tlv]) -> bytes:
    """Serialise a list of TLV objects (minimal length encoding)."""
    out = bytearray()
    for obj in objects:
        if not valid_tag(obj.tag):
            raise ValueError(f"invalid tag {obj.tag:#x}")
        value = encode(obj.children) if obj.constructed else obj.value
        out += tag_bytes(obj.tag) + encode_length(len(value)) + value
    return bytes(out)


def _read_tag(data: bytes, pos: int, end: int) -> tuple[int, int]:
    start = pos
    first = data[pos]
    pos += 1
    if first & MULTI_BYTE_TAG_MASK == MULTI_BYTE_TAG_MASK:
        while True:
            if pos >= end:
                raise TlvError(start, "tag truncated")
            more = data[pos] & MORE_TAG_BYTES_BIT
            pos += 1
            if pos - start > MAX_TAG_BYTES:
                raise TlvError(start, f"tag longer than {MAX_TAG_BYTES} bytes")
            if not more:
                break
    return int.from_bytes(data[start:pos], "big"), pos


def _read_length(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    if pos >= end:
        raise TlvError(pos, f"length of tag {tag_hex(tag)} missing")
    first = data[pos]
    if first < SHORT_LENGTH_LIMIT:
        return first, pos + 1
    count = first & ~LONG_LENGTH_FLAG
    if count == 0:
        raise TlvError(pos, "indefinite length is not allowed")
    if count > MAX_LENGTH_BYTES:
        raise TlvError(pos, f"length field of {count} bytes is too long")
    if pos + 1 + count > end:
        raise TlvError(pos, f"length of tag {tag_hex(tag)} truncated")
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _parse(data: bytes, pos: int, end: int, depth: int) -> tuple[Tlv, ...]:
    if depth > MAX_DEPTH:
        raise TlvError(pos, f"templates nested deeper than {MAX_DEPTH}")
    objects: list[Tlv] = []
    while pos < end:
        if data[pos] in PADDING_BYTES:
            pos += 1
            continue
        start = pos
        tag, pos = _read_tag(data, pos, end)
        length, pos = _read_length(data, pos, end, tag)
        if pos + length > end:
            where = "input" if end == len(data) else "enclosing template"
            raise TlvError(
                start, f"value of tag {tag_hex(tag)} ({length} bytes) overruns the {where}"
            )
        if is_constructed(tag):
            objects.append(Tlv(tag, children=_parse(data, pos, pos + length, depth + 1)))
        else:
            objects.append(Tlv(tag, value=data[pos : pos + length]))
        pos += length
    return tuple(objects)


def parse(data: bytes) -> tuple[Tlv, ...]:
    """Parse a complete BER-TLV list. Raises `TlvError(offset, reason)` on malformed input."""
    return _parse(bytes(data), 0, len(data), 0)


def parse_hex(text: str) -> tuple[Tlv, ...]:
    """Parse hex text (spaces, colons and newlines ignored)."""
    cleaned = "".join(text.split()).replace(":", "")
    if len(cleaned) % 2:
        raise TlvError(len(cleaned) // 2, "odd number of hex digits")
    try:
        data = bytes.fromhex(cleaned)
    except ValueError:
        bad = next(i for i, c in enumerate(cleaned) if c not in "0123456789abcdefABCDEF")
        raise TlvError(bad // 2, "not a hex digit") from None
    return parse(data)


def walk(objects: Sequence[Tlv], depth: int = 0) -> Iterator[tuple[int, Tlv]]:
    """Depth-first (depth, object) pairs, templates before their children."""
    for obj in objects:
        yield depth, obj
        yield from walk(obj.children, depth + 1)


def find(objects: Sequence[Tlv], tag: int) -> Tlv | None:
    """The first object with `tag`, searching nested templates too."""
    return next((obj for _, obj in walk(objects) if obj.tag == tag), None)
