"""BER-TLV: known encodings, nested round trip (property), typed errors with offsets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card import tlv
from drivers.card.tlv import Tlv
from drivers.errors import TlvError


def test_multi_byte_tags_and_long_lengths() -> None:
    amount = Tlv(0x9F02, bytes.fromhex("000000001234"))
    big = Tlv(0xDF8101, bytes(200))
    bigger = Tlv(0x5F20, bytes(300))
    data = tlv.encode([amount, big, bigger])
    assert data[:9] == bytes.fromhex("9F0206000000001234")
    assert data[9:14] == bytes.fromhex("DF810181C8")  # 3-byte tag, 0x81 long form
    assert data[14 + 200 : 14 + 200 + 4] == bytes.fromhex("5F208201")  # 0x82 long form
    assert tlv.parse(data) == (amount, big, bigger)


def test_nested_templates_and_find() -> None:
    data = bytes.fromhex("770E 9F360200 01 70 07 5A 05 1234567890".replace(" ", ""))
    (outer,) = tlv.parse(data)
    assert outer.constructed and outer.tag == 0x77
    assert [c.tag for c in outer.children] == [0x9F36, 0x70]
    found = tlv.find([outer], 0x5A)
    assert found is not None and found.value == bytes.fromhex("1234567890")
    assert [(d, tlv.tag_hex(o.tag)) for d, o in tlv.walk([outer])] == [
        (0, "77"),
        (1, "9F36"),
        (1, "70"),
        (2, "5A"),
    ]
    assert "1234567890" not in repr(outer)


def test_padding_between_objects_is_skipped() -> None:
    assert tlv.parse(bytes.fromhex("00 5A0112 FF FF 9F3601AA 00".replace(" ", ""))) == (
        Tlv(0x5A, b"\x12"),
        Tlv(0x9F36, b"\xaa"),
    )


@pytest.mark.parametrize(
    ("hex_data", "offset", "reason"),
    [
        ("5A05123456", 0, "overruns the input"),
        ("9F", 0, "tag truncated"),
        ("9F81", 0, "tag truncated"),
        ("9F81818101", 0, "tag longer"),
        ("5A", 1, "length of tag 5A missing"),
        ("5A8201", 1, "truncated"),
        ("5A80", 1, "indefinite"),
        ("5A850000000001", 1, "too long"),
        ("7003 5A0512 00", 2, "overruns the enclosing template"),
        ("5A0112 5A02", 3, "overruns the input"),
    ],
)
def test_malformed_input_reports_the_offset(hex_data: str, offset: int, reason: str) -> None:
    with pytest.raises(TlvError) as info:
        tlv.parse(bytes.fromhex(hex_data.replace(" ", "")))
    assert info.value.offset == offset
    assert reason in info.value.reason
    assert f"byte {offset}" in str(info.value)


def test_depth_limit() -> None:
    data = b""
    for _ in range(tlv.MAX_DEPTH + 2):
        data = tlv.encode([Tlv(0x70)]) if not data else bytes([0x70, len(data)]) + data
    with pytest.raises(TlvError, match="nested deeper"):
        tlv.parse(data)


def test_parse_hex() -> None:
    assert tlv.parse_hex("5A 01:12\n") == (Tlv(0x5A, b"\x12"),)
    with pytest.raises(TlvError, match="odd number"):
        tlv.parse_hex("5A011")
    with pytest.raises(TlvError, match="not a hex digit") as info:
        tlv.parse_hex("5A01ZZ")
    assert info.value.offset == 2


def _tag(constructed: bool) -> st.SearchStrategy[int]:
    flag = 0x20 if constructed else 0x00
    one_byte = st.sampled_from([c for c in range(0x01, 0x1F) if c]).map(
        lambda low: 0x40 | flag | low
    )
    two_bytes = st.integers(0x00, 0x7F).map(lambda second: ((0x9F | flag) << 8) | second)
    three_bytes = st.tuples(st.integers(0x81, 0xFF), st.integers(0x00, 0x7F)).map(
        lambda pair: ((0x5F | flag) << 16) | (pair[0] << 8) | pair[1]
    )
    return st.one_of(one_byte, two_bytes, three_bytes)


primitives = st.builds(Tlv, _tag(False), st.binary(max_size=300))
tlv_trees = st.recursive(
    primitives,
    lambda children: st.builds(
        lambda tag, kids: Tlv(tag, children=tuple(kids)),
        _tag(True),
        st.lists(children, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=150)
@given(st.lists(tlv_trees, max_size=5))
def test_round_trip_including_nested_templates(objects: list[Tlv]) -> None:
    assert all(tlv.valid_tag(o.tag) for _, o in tlv.walk(objects))
    assert tlv.parse(tlv.encode(objects)) == tuple(objects)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_tlv_error_only(data: bytes) -> None:
    offset = None
    try:
        tlv.parse(data)
    except TlvError as error:
        offset = error.offset
    assert offset is None or 0 <= offset <= len(data)


@settings(max_examples=100)
@given(st.lists(tlv_trees, min_size=1, max_size=3), st.data())
def test_every_truncation_is_detected(objects: list[Tlv], data: st.DataObject) -> None:
    encoded = tlv.encode(objects)
    cut = data.draw(st.integers(1, len(encoded) - 1)) if len(encoded) > 1 else 0
    boundaries = {0}
    position = 0
    for obj in objects:
        position += len(tlv.encode([obj]))
        boundaries.add(position)
    if cut in boundaries:
        return
    with pytest.raises(TlvError) as info:
        tlv.parse(encoded[:cut])
    assert info.value.offset <= cut
