"""The HID MSR report layouts without USB: descriptors, reports <-> swipes, swipes -> cards.

Round trips (encode -> transfers -> assembler -> parse) for both layouts, refusals of lengths
beyond a field, the decode-status rule (a bad track is left out while another reads), and
any bytes refused only with `ProtocolError` / `CardDataError`, never IndexError & co.
"""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card.carddata import EntryMode
from drivers.card.deck import DeckCard, default_deck
from drivers.card.hid_msr_formats import (
    DECODE_ERROR,
    HID_POS,
    LAYOUTS,
    MAGTEK,
    NOT_PRESENT,
    MsrLayout,
    MsrSwipe,
    TrackRead,
    layout_for,
    packets,
)
from drivers.card.hid_msr_formats.descriptor import (
    MAX_USAGES_PER_ITEM,
    InputField,
    build_descriptor,
    input_fields,
)
from drivers.card.hid_msr_formats.hid_pos import TRACK_FIELD_SIZES
from drivers.card.hid_msr_formats.magtek import (
    MAGTEK_HID_SWIPE_PRODUCT_ID,
    MAGTEK_VENDOR_ID,
    TRACK_FIELD_SIZE,
)
from drivers.card.results import CardRead, CardUnreadable
from drivers.card.swipe_text import is_read_error
from drivers.errors import (
    CardDataError,
    OptionError,
    ProtocolError,
    TrackFormatError,
    TrackLrcError,
)
from drivers.sensitive import SecretStr
from tests.drivers.card.conftest import assert_no_secret

MAGSTRIPE_DECK = tuple(card for card in default_deck() if card.entry_mode is EntryMode.MAGSTRIPE)
LAYOUT_LIST = tuple(LAYOUTS.values())
MAGTEK_REPORT_SIZE = 337  # 7 header bytes and three 110-byte track fields (99875191)


def text(value: str) -> TrackRead:
    return TrackRead(text=SecretStr(value))


def deck_swipe(card: DeckCard, track1: TrackRead | None = None) -> MsrSwipe:
    return MsrSwipe(track1 or TrackRead(text=card.track1), TrackRead(text=card.track2))


def assemble(layout: MsrLayout, swipe: MsrSwipe, start: float = 0.0) -> bytes:
    """What the reader's assembler makes of the transfers carrying `swipe`'s reports."""
    assembler = layout.assembler()
    transfers = [p for report in layout.encode(swipe) for p in packets(report)]
    results = [assembler.feed(t, start + i * 0.001) for i, t in enumerate(transfers)]
    assert all(r is None for r in results[:-1])
    finished = results[-1]
    assert finished is not None
    return finished


# -- layout selection -----------------------------------------------------------------------


def test_a_magtek_hid_swipe_reader_gets_the_magtek_layout_any_other_the_pos_page() -> None:
    assert layout_for(MAGTEK_VENDOR_ID, MAGTEK_HID_SWIPE_PRODUCT_ID) is MAGTEK
    assert layout_for(0x1234, 0x5678) is HID_POS


def test_report_format_forces_the_layout_and_refuses_unknown_names() -> None:
    assert layout_for(MAGTEK_VENDOR_ID, MAGTEK_HID_SWIPE_PRODUCT_ID, "hid-pos") is HID_POS
    assert layout_for(0x1234, 0x5678, "magtek") is MAGTEK
    with pytest.raises(OptionError, match="report_format"):
        layout_for(0x1234, 0x5678, "keyboard")


# -- descriptors ------------------------------------------------------------------------------


def test_magtek_declares_its_published_report() -> None:
    assert MAGTEK.sizes == {0: MAGTEK_REPORT_SIZE}
    # 99875191's descriptor begins: Usage Page (FF00), Usage (1), Collection (Application).
    assert MAGTEK.report_descriptor.startswith(bytes.fromhex("0600FF 0901 A101".replace(" ", "")))
    assert [f.usages for f in input_fields(MAGTEK.report_descriptor)][1:] == [
        (0x30,),
        (0x31,),
        (0x32,),
    ]


def test_the_pos_layout_declares_page_0x8e_lengths_then_track_data() -> None:
    fields = input_fields(HID_POS.report_descriptor)
    assert {f.usage_page for f in fields} == {0x8E}
    assert [f.usages for f in fields] == [(0x11, 0x12, 0x13), (0x21,), (0x22,), (0x23,)]
    assert HID_POS.sizes == {1: 4, 2: 80, 3: 41, 4: 108}


@pytest.mark.parametrize("layout", LAYOUT_LIST, ids=lambda layout: layout.name)
def test_each_layout_accepts_its_own_descriptor_and_refuses_the_other(layout: MsrLayout) -> None:
    layout.check_descriptor(layout.report_descriptor)
    other = next(o for o in LAYOUT_LIST if o is not layout)
    with pytest.raises(ProtocolError, match="report_format"):
        layout.check_descriptor(other.report_descriptor)


fields_strategy = st.lists(
    st.builds(
        InputField,
        report_id=st.integers(1, 255),
        usage_page=st.just(0x8E),
        usages=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=8).map(tuple),
        bits=st.integers(1, 32),
        count=st.integers(1, 0xFFFF),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(fields_strategy)
def test_descriptor_build_parse_round_trip(fields: list[InputField]) -> None:
    assert input_fields(build_descriptor(0x8E, 0x01, fields)) == tuple(fields)


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=120)
    | st.sampled_from([MAGTEK.report_descriptor, HID_POS.report_descriptor]).flatmap(
        lambda d: st.integers(0, len(d)).map(lambda cut: d[:cut])
    )
)
def test_any_descriptor_bytes_parse_or_raise_protocol_error(descriptor: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        input_fields(descriptor)


USAGE_RANGE_0_TO_3FF = bytes.fromhex("19002aff03")  # Usage Minimum 0, Usage Maximum 0x3FF
INPUT_VARIABLE = bytes.fromhex("8102")
HOSTILE_DESCRIPTOR_SIZE = 64 * 1024


def test_usages_beyond_the_cap_before_a_main_item_are_a_protocol_error() -> None:
    ranges = -(-(MAX_USAGES_PER_ITEM + 1) // 0x400)
    with pytest.raises(ProtocolError, match="usages"):
        input_fields(USAGE_RANGE_0_TO_3FF * ranges + INPUT_VARIABLE)


def test_usages_up_to_the_cap_still_parse() -> None:
    ranges = MAX_USAGES_PER_ITEM // 0x400
    (field,) = input_fields(USAGE_RANGE_0_TO_3FF * ranges + INPUT_VARIABLE)
    assert len(field.usages) == MAX_USAGES_PER_ITEM


def test_a_hostile_descriptor_of_repeated_usage_ranges_is_refused_early() -> None:
    repeats = HOSTILE_DESCRIPTOR_SIZE // len(USAGE_RANGE_0_TO_3FF)
    with pytest.raises(ProtocolError):
        input_fields(USAGE_RANGE_0_TO_3FF * repeats)


# -- round trips ------------------------------------------------------------------------------


def track_strategy(field_size: int) -> st.SearchStrategy[TrackRead]:
    printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=field_size)
    return st.one_of(
        st.just(NOT_PRESENT),
        st.just(DECODE_ERROR),
        printable.filter(lambda t: not is_read_error(t)).map(text),
    )


def swipes(field_sizes: tuple[int, int, int]) -> st.SearchStrategy[MsrSwipe]:
    return st.builds(MsrSwipe, *(track_strategy(size) for size in field_sizes))


@settings(max_examples=200, deadline=None)
@given(swipes((TRACK_FIELD_SIZE,) * 3))
def test_magtek_round_trip(swipe: MsrSwipe) -> None:
    assert MAGTEK.parse(assemble(MAGTEK, swipe)) == swipe


@settings(max_examples=200, deadline=None)
@given(swipes(TRACK_FIELD_SIZES))
def test_hid_pos_round_trip(swipe: MsrSwipe) -> None:
    assert HID_POS.parse(assemble(HID_POS, swipe)) == swipe


def test_magtek_sends_one_report_and_the_pos_page_one_per_track_read() -> None:
    swipe = deck_swipe(MAGSTRIPE_DECK[0])
    assert [len(r) for r in MAGTEK.encode(swipe)] == [MAGTEK_REPORT_SIZE]
    assert [r[0] for r in HID_POS.encode(swipe)] == [1, 2, 3]
    assert [r[0] for r in HID_POS.encode(MsrSwipe(track2=swipe.track2))] == [1, 3]


# -- lengths beyond the field -----------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUT_LIST, ids=lambda layout: layout.name)
def test_the_encoder_refuses_a_track_longer_than_its_field(layout: MsrLayout) -> None:
    with pytest.raises(TrackFormatError, match="field"):
        layout.encode(MsrSwipe(track3=text(";" + "1" * 120 + "?")))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2), st.integers(TRACK_FIELD_SIZE + 1, 255))
def test_magtek_refuses_a_length_beyond_the_field(track: int, length: int) -> None:
    report = bytearray(MAGTEK.encode(MsrSwipe())[0])
    report[3 + track] = length
    with pytest.raises(ProtocolError, match="exceeds"):
        MAGTEK.parse(bytes(report))
    assembler = MAGTEK.assembler()
    *head, last = packets(bytes(report))
    assert all(assembler.feed(p, 0.0) is None for p in head)
    with pytest.raises(ProtocolError, match="exceeds"):
        assembler.feed(last, 0.0)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 2).flatmap(
        lambda t: st.tuples(st.just(t), st.integers(TRACK_FIELD_SIZES[t] + 1, 255))
    )
)
def test_hid_pos_refuses_a_length_beyond_the_field(track_length: tuple[int, int]) -> None:
    track, length = track_length
    lengths = bytearray(HID_POS.encode(MsrSwipe())[0])
    lengths[1 + track] = length
    with pytest.raises(ProtocolError, match="exceeds"):
        HID_POS.assembler().feed(bytes(lengths), 0)


def test_a_pos_data_report_out_of_order_or_unannounced_is_malformed() -> None:
    reports = HID_POS.encode(deck_swipe(MAGSTRIPE_DECK[0]))
    assembler = HID_POS.assembler()
    with pytest.raises(ProtocolError, match="lengths report"):
        assembler.feed(reports[1], 0)
    assembler.reset()
    assembler.feed(reports[0], 0)
    with pytest.raises(ProtocolError, match="out of order"):
        assembler.feed(reports[2], 0)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LAYOUT_LIST), st.lists(st.integers(1, 400), max_size=12))
def test_transfers_cut_anywhere_make_the_same_swipe(layout: MsrLayout, cuts: list[int]) -> None:
    """A report whose last packet is full-size does not end its transfer: a transfer may
    carry the end of one report and the start of the next."""
    stream = b"".join(layout.encode(deck_swipe(MAGSTRIPE_DECK[0])))
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    assembler = layout.assembler()
    results = [assembler.feed(stream[a:b], 0.0) for a, b in itertools.pairwise(bounds)]
    assert [r for r in results if r is not None] == [stream]
    assert results[-1] == stream


def test_a_swipe_cut_short_is_dropped_after_silence_and_the_next_reads() -> None:
    card = MAGSTRIPE_DECK[0]
    report = MAGTEK.encode(deck_swipe(card))[0]
    assembler = MAGTEK.assembler()
    assert assembler.feed(report[:64], 0.0) is None
    assert assembler.expire(5.0) is None  # the rest never came: dropped
    transfers = packets(report)
    results = [assembler.feed(t, 6.0) for t in transfers]
    assert results[-1] == report


# -- any bytes ------------------------------------------------------------------------------


def near_valid(layout: MsrLayout) -> st.SearchStrategy[bytes]:
    valid = b"".join(layout.encode(deck_swipe(MAGSTRIPE_DECK[0])))
    return st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)).map(
        lambda change: valid[: change[0]] + bytes([change[1]]) + valid[change[0] + 1 :]
    )


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(LAYOUT_LIST),
    st.binary(max_size=400) | near_valid(MAGTEK) | near_valid(HID_POS),
)
def test_any_bytes_parse_or_raise_protocol_or_card_data_errors(
    layout: MsrLayout, data: bytes
) -> None:
    refusal = ""
    try:
        layout.parse(data).read()
    except (ProtocolError, CardDataError) as error:
        refusal = f"{error.code}: {error}"
    assert_no_secret(refusal, MAGSTRIPE_DECK[0].track2.reveal()[1:17])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(LAYOUT_LIST), st.lists(st.binary(max_size=70), max_size=8))
def test_any_transfers_feed_or_raise_protocol_errors(
    layout: MsrLayout, transfers: list[bytes]
) -> None:
    assembler = layout.assembler()
    for transfer in transfers:
        try:
            assembler.feed(transfer, 0.0)
        except ProtocolError:
            assembler.reset()


# -- swipes to cards --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUT_LIST, ids=lambda layout: layout.name)
@pytest.mark.parametrize("card", MAGSTRIPE_DECK, ids=lambda card: card.label)
def test_every_deck_card_reads_through_both_layouts(layout: MsrLayout, card: DeckCard) -> None:
    result = layout.parse(assemble(layout, deck_swipe(card))).read()
    assert isinstance(result, CardRead)
    read = result.card
    assert read.pan.reveal() == card.track2.reveal()[1:].split("=")[0]
    assert read.cardholder_name is not None


@pytest.mark.parametrize("layout", LAYOUT_LIST, ids=lambda layout: layout.name)
def test_a_bad_track_1_is_left_out_when_track_2_reads(layout: MsrLayout) -> None:
    card = MAGSTRIPE_DECK[0]
    result = layout.parse(assemble(layout, deck_swipe(card, DECODE_ERROR))).read()
    assert isinstance(result, CardRead)
    read = result.card
    assert read.track1 is None and read.cardholder_name is None
    assert not read.problems


@pytest.mark.parametrize("layout", LAYOUT_LIST, ids=lambda layout: layout.name)
@pytest.mark.parametrize(
    "swipe",
    [
        MsrSwipe(DECODE_ERROR, DECODE_ERROR, DECODE_ERROR),
        MsrSwipe(DECODE_ERROR, NOT_PRESENT, NOT_PRESENT),
        MsrSwipe(),
        MsrSwipe(track3=text(";0123456789?")),
    ],
    ids=["all-bad", "bad-and-blank", "blank", "track-3-only"],
)
def test_no_track_1_or_2_read_is_unreadable(layout: MsrLayout, swipe: MsrSwipe) -> None:
    assert isinstance(layout.parse(assemble(layout, swipe)).read(), CardUnreadable)


def test_a_track_that_reads_but_fails_its_checks_is_a_card_data_error() -> None:
    card = MAGSTRIPE_DECK[0]
    track2 = card.track2.reveal()
    broken = track2[:-1] + chr(ord(track2[-1]) ^ 1)  # the LRC no longer matches
    swipe = MsrSwipe(track2=text(broken))
    with pytest.raises(TrackLrcError) as raised:
        HID_POS.parse(assemble(HID_POS, swipe)).read()
    assert_no_secret(str(raised.value), track2[1:17])


def test_reprs_never_show_the_track() -> None:
    swipe = deck_swipe(MAGSTRIPE_DECK[0])
    assert_no_secret(repr(swipe), MAGSTRIPE_DECK[0].track2.reveal()[1:17])
