"""Frame codec: the Transbank vector, round trip, garbage tolerance and resynchronisation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card.framing import (
    ACK,
    ETX,
    MAX_PAYLOAD,
    NAK,
    STX,
    BadFrame,
    BadFrameReason,
    Control,
    Frame,
    FrameDecoder,
    decode_frame,
    encode_frame,
)
from drivers.errors import FrameError

TRANSBANK_FRAME = bytes.fromhex("02 30 32 30 30 7C 31 32 33 7C 03 31")

payloads = st.binary(max_size=300).map(lambda b: bytes(0x20 + (x % 0x5F) for x in b))


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _feed(decoder: FrameDecoder, chunks: list[bytes]) -> list[object]:
    events: list[object] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def test_transbank_vector() -> None:
    assert encode_frame(b"0200|123|") == TRANSBANK_FRAME
    assert decode_frame(TRANSBANK_FRAME) == b"0200|123|"
    assert FrameDecoder().feed(TRANSBANK_FRAME) == [Frame(b"0200|123|")]


@pytest.mark.parametrize(
    "frame",
    [
        TRANSBANK_FRAME[:-1] + b"\x30",  # bad LRC
        TRANSBANK_FRAME[1:],  # no STX
        TRANSBANK_FRAME[:-2] + TRANSBANK_FRAME[-1:],  # no ETX
        b"\x02\x01\x03\x02",  # control byte in payload
        b"\x02",
    ],
)
def test_decode_frame_rejects(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode_frame(frame)


def test_encode_rejects_unframeable_payloads() -> None:
    for payload in (b"a\x03b", b"\x02", "é".encode(), b"x" * (MAX_PAYLOAD + 1)):
        with pytest.raises(FrameError):
            encode_frame(payload)


def test_control_bytes_and_bad_frames() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(bytes([ACK, NAK])) == [Control.ACK, Control.NAK]
    assert decoder.feed(TRANSBANK_FRAME[:-1] + b"\x30") == [BadFrame(BadFrameReason.LRC)]
    # An ACK inside a frame breaks it and still counts as an ACK.
    assert decoder.feed(b"\x02ab" + bytes([ACK])) == [
        BadFrame(BadFrameReason.FORBIDDEN_BYTE),
        Control.ACK,
    ]
    assert decoder.feed(b"\x02abc") == []
    assert decoder.in_frame
    assert decoder.abort_partial() == BadFrame(BadFrameReason.TIMEOUT)
    assert decoder.abort_partial() is None
    small = FrameDecoder(max_payload=4)
    assert small.feed(b"\x02abcde\x03x") == [BadFrame(BadFrameReason.TOO_LONG)]


def test_lost_lrc_followed_by_next_frame() -> None:
    # A frame whose LRC byte was lost: the next STX must start the next frame.
    data = encode_frame(b"first")[:-1] + encode_frame(b"second")
    events = FrameDecoder().feed(data)
    assert events == [BadFrame(BadFrameReason.LRC), Frame(b"second")]


@settings(max_examples=200)
@given(st.lists(payloads, min_size=1, max_size=5), st.lists(st.integers(0, 10_000), max_size=10))
def test_round_trip_in_any_chunking(frames: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(encode_frame(p) for p in frames)
    events = _feed(FrameDecoder(), _chunked(wire, cuts))
    assert events == [Frame(p) for p in frames]
    for payload in frames:
        assert decode_frame(encode_frame(payload)) == payload


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    decoder = FrameDecoder()
    events = decoder.feed(data)
    assert all(isinstance(e, Frame | BadFrame | Control) for e in events)
    # Everything we accepted really was a valid frame somewhere in the input.
    for event in events:
        if isinstance(event, Frame):
            assert encode_frame(event.payload) in data


@settings(max_examples=200)
@given(st.binary(max_size=300).filter(lambda b: STX not in b), payloads)
def test_recovers_immediately_after_garbage_without_stx(garbage: bytes, payload: bytes) -> None:
    events = FrameDecoder().feed(garbage + encode_frame(payload))
    assert events[-1] == Frame(payload)


@settings(max_examples=200)
@given(st.binary(max_size=300), payloads)
def test_recovers_after_any_garbage_and_an_inter_byte_timeout(
    garbage: bytes, payload: bytes
) -> None:
    decoder = FrameDecoder()
    decoder.feed(garbage)
    decoder.abort_partial()  # what the link does after the inter-byte timeout
    assert decoder.feed(encode_frame(payload)) == [Frame(payload)]


@settings(max_examples=200)
@given(st.binary(max_size=300), payloads)
def test_recovers_after_any_garbage_by_the_second_transmission(
    garbage: bytes, payload: bytes
) -> None:
    # Worst case the garbage ends inside a frame and eats the first copy; the resend
    # (the link resends on NAK or timeout) always comes through.
    decoder = FrameDecoder()
    events = decoder.feed(garbage + encode_frame(payload) + encode_frame(payload))
    assert events[-1] == Frame(payload)


def test_stx_and_etx_in_garbage_before_a_frame() -> None:
    garbage = bytes([STX, ETX])  # a broken frame whose "LRC" will be the real STX
    events = FrameDecoder().feed(garbage + TRANSBANK_FRAME)
    assert events == [BadFrame(BadFrameReason.LRC), Frame(b"0200|123|")]
