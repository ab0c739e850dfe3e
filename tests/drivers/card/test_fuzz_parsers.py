"""Arbitrary input to every card-data parser and to the reader's protocol decoder gives a
result or that parser's own error (`CardDataError`, `ProtocolError`), never anything else:
tracks and swipes (any text, and valid tracks with one character changed), the reader's
responses and commands (any bytes, and valid ones cut or with a field swapped)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card.emv import (
    TAG_PAN,
    TAG_TRACK2_EQUIVALENT,
    build_pan_bcd,
    card_from_tlv,
    parse_track2_equivalent,
)
from drivers.card.protocol import decode_command, decode_response
from drivers.card.tracks import parse_swipe, parse_track1, parse_track2, parse_track3
from drivers.errors import CardDataError, ProtocolError, ServiceCodeError
from tests.cards import AMEX_TEST_PAN, VISA_TEST_PAN

TRACK1 = f"%B{VISA_TEST_PAN}^TEST/CARD^2912101000000000?"
TRACK2 = f";{AMEX_TEST_PAN}=29121010000000?"
TRACK_ALPHABET = "%;?^=B0123456789 /ABCXYZ\x00\xff"
RESPONSES = (b"ID|POSD-SIM-1|1.0.0|SIM0001", b"OK|ST", b"SS|idle", b"ER|timeout", b"CD|C|9f02")


@st.composite
def changed(draw: st.DrawFn, original: str) -> str:
    """`original` with one character replaced, inserted or removed."""
    index = draw(st.integers(0, len(original) - 1))
    char = draw(st.sampled_from(TRACK_ALPHABET))
    how = draw(st.sampled_from(["replace", "insert", "remove"]))
    if how == "replace":
        return original[:index] + char + original[index + 1 :]
    if how == "insert":
        return original[:index] + char + original[index:]
    return original[:index] + original[index + 1 :]


track_texts = (
    st.text(TRACK_ALPHABET, max_size=120)
    | st.text(max_size=60)
    | changed(TRACK1)
    | changed(TRACK2)
    | changed(TRACK1 + TRACK2)
)


@settings(max_examples=400, deadline=None)
@given(track_texts)
def test_track_parsers_answer_or_refuse_with_card_data_errors(text: str) -> None:
    for parse in (parse_track1, parse_track2, parse_track3, parse_swipe):
        refusal = ""
        try:
            parse(text)
        except CardDataError as error:
            refusal = f"{error.code}: {error}"
        # a coded refusal whose text never holds the card number
        assert VISA_TEST_PAN not in refusal and AMEX_TEST_PAN not in refusal


frames = (
    st.binary(max_size=200)
    | st.sampled_from(RESPONSES).flatmap(
        lambda payload: st.integers(0, len(payload)).map(lambda cut: payload[:cut])
    )
    | st.tuples(st.sampled_from(RESPONSES), st.binary(max_size=20)).map(
        lambda pair: pair[0].replace(b"|", b"|" + pair[1], 1)
    )
)


@settings(max_examples=400, deadline=None)
@given(frames)
def test_the_protocol_decoders_answer_or_raise_protocol_errors(payload: bytes) -> None:
    for decode in (decode_response, decode_command):
        code = "device_protocol"
        try:
            decode(payload)
        except ProtocolError as error:
            code = error.code
        assert code == "device_protocol"


TRACK2_EQ_NIBBLES = "0123456789DF"  # digits, the field separator and the padding


@settings(max_examples=400, deadline=None)
@given(
    st.text(TRACK2_EQ_NIBBLES, max_size=20) | st.text("0123456789ABCDEF", max_size=12),
    st.booleans(),
)
def test_track2_equivalent_answers_or_refuses_with_card_data_errors(
    fields: str, with_pan_tag: bool
) -> None:
    """Tag 57 whose fields after the PAN are any nibbles (a service code of `F` padding...)."""
    text = f"{VISA_TEST_PAN}D{fields}"
    value = bytes.fromhex(text + "F" * (len(text) % 2))
    data = bytes([TAG_TRACK2_EQUIVALENT, len(value)]) + value
    if with_pan_tag:
        pan = build_pan_bcd(VISA_TEST_PAN)
        data = bytes([TAG_PAN, len(pan)]) + pan + data
    for parse in (lambda: parse_track2_equivalent(value), lambda: card_from_tlv(data)):
        refusal = ""
        try:
            parse()
        except CardDataError as error:
            refusal = f"{error.code}: {error}"
        assert VISA_TEST_PAN not in refusal


def test_a_padding_service_code_is_a_service_code_problem() -> None:
    value = bytes.fromhex(f"{VISA_TEST_PAN}D2912FFF10")  # the service code is padding nibbles
    parsed = parse_track2_equivalent(value)
    assert parsed.service_code is None
    assert [type(p) for p in parsed.problems] == [ServiceCodeError]
