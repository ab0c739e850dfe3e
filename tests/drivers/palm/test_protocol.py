"""The Amazon One adapter's frame codec and messages: documented layout, round trips, and
arbitrary or corrupted bytes raising only typed errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import FrameError, ProtocolError
from drivers.palm.identity import PalmCredential
from drivers.palm.protocol import (
    MAX_CONFIDENCE_BP,
    MAX_CREDENTIAL_LEN,
    MAX_FRAME_SIZE,
    MAX_PAYLOAD,
    MAX_SEQ,
    Armed,
    Cancel,
    CancelledResult,
    ChecksumError,
    Error,
    ErrorCode,
    Frame,
    GetInfo,
    Identify,
    Info,
    Match,
    Message,
    NoMatchResult,
    Ok,
    Resend,
    TimedOutResult,
    checksum,
    decode_command,
    decode_frame,
    decode_message,
    decode_response,
    encode_frame,
    encode_message,
)

frames = st.builds(
    Frame,
    type=st.integers(0, 0xFF),
    seq=st.integers(0, MAX_SEQ),
    payload=st.binary(max_size=MAX_PAYLOAD),
)
texts = st.text(max_size=40).filter(lambda t: len(t.encode("utf-8")) <= 0xFF)
credentials = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    min_size=1,
    max_size=MAX_CREDENTIAL_LEN,
).map(PalmCredential)
messages: st.SearchStrategy[Message] = st.one_of(
    st.sampled_from(
        [
            GetInfo(),
            Cancel(),
            Resend(),
            Armed(),
            Ok(),
            NoMatchResult(),
            CancelledResult(),
            TimedOutResult(),
        ]
    ),
    st.builds(Identify, st.integers(1, 2**32 - 1)),
    st.builds(Info, texts, texts, texts),
    st.builds(Match, st.integers(0, MAX_CONFIDENCE_BP), credentials),
    st.builds(Error, st.sampled_from(ErrorCode)),
)


def test_crc_is_ccitt_false_check_value() -> None:
    assert checksum(b"123456789") == 0x29B1


def test_frame_layout_is_as_documented() -> None:
    wire = encode_message(Identify(1500), seq=7)
    header = bytes([0xA1, 0x0E, 0x01, 0x02, 0x07, 0x00, 0x04])
    payload = (1500).to_bytes(4, "big")
    assert wire == header + payload + checksum(header + payload).to_bytes(2, "big")


def test_largest_frame_fits_the_transfer_size() -> None:
    assert len(encode_frame(Frame(0x81, 1, bytes(MAX_PAYLOAD)))) == MAX_FRAME_SIZE
    with pytest.raises(ValueError, match="payload"):
        Frame(0x81, 1, bytes(MAX_PAYLOAD + 1))


@settings(max_examples=150)
@given(frames)
def test_frame_round_trip(frame: Frame) -> None:
    assert decode_frame(encode_frame(frame)) == frame


@settings(max_examples=150)
@given(messages, st.integers(0, MAX_SEQ))
def test_message_round_trip(message: Message, seq: int) -> None:
    frame = decode_frame(encode_message(message, seq))
    assert frame.seq == seq
    assert decode_message(frame) == message


@settings(max_examples=300)
@given(st.binary(max_size=MAX_FRAME_SIZE + 8))
def test_arbitrary_bytes_raise_only_typed_errors(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError:
        return
    assert encode_frame(frame) == data  # whatever decodes re-encodes to the same bytes
    try:
        message = decode_message(frame)
    except ProtocolError:
        return
    assert frame.type == message.TYPE


@settings(max_examples=200)
@given(st.binary(max_size=MAX_PAYLOAD), st.integers(0, 0xFF), st.integers(0, MAX_SEQ))
def test_arbitrary_payloads_in_good_frames_raise_only_protocol_errors(
    payload: bytes, kind: int, seq: int
) -> None:
    frame = decode_frame(encode_frame(Frame(kind, seq, payload)))
    try:
        message = decode_message(frame)
    except ProtocolError:
        return
    assert kind == message.TYPE
    assert message.payload() == payload  # a message decodes only from its canonical bytes


@settings(max_examples=200)
@given(frames, st.data())
def test_every_single_bit_error_is_detected(frame: Frame, data: st.DataObject) -> None:
    wire = bytearray(encode_frame(frame))
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(FrameError):
        decode_frame(bytes(wire))


def test_corruption_kinds_have_their_own_errors() -> None:
    wire = encode_message(GetInfo(), 1)
    with pytest.raises(ChecksumError):
        decode_frame(wire[:-1] + bytes([wire[-1] ^ 1]))
    with pytest.raises(FrameError, match="too short"):
        decode_frame(wire[:5])
    with pytest.raises(FrameError, match="magic"):
        decode_frame(b"XX" + wire[2:])
    with pytest.raises(FrameError, match="version"):
        decode_frame(wire[:2] + b"\x09" + wire[3:])
    with pytest.raises(FrameError, match="length"):
        decode_frame(wire + b"\x00")


def test_direction_is_checked() -> None:
    command = decode_frame(encode_message(GetInfo(), 1))
    response = decode_frame(encode_message(Armed(), 1))
    assert decode_command(command) == GetInfo()
    assert decode_response(response) == Armed()
    with pytest.raises(ProtocolError, match="not a response"):
        decode_response(command)
    with pytest.raises(ProtocolError, match="not a command"):
        decode_command(response)


def test_bad_messages_never_quote_the_credential() -> None:
    secret = "tok-SECRET-4242"
    good = Match(9000, PalmCredential(secret)).payload()
    for broken in (good + b"x", good[:-1], bytes([0xFF, 0xFF]) + good[2:]):
        with pytest.raises(ProtocolError) as caught:
            decode_message(Frame(0x90, 3, broken))
        assert secret not in str(caught.value)
        assert "SECRET" not in repr(Frame(0x90, 3, good))


@pytest.mark.parametrize(
    "credential", ["", "x" * (MAX_CREDENTIAL_LEN + 1), "tok\n1", "tök"], ids=repr
)
def test_invalid_credentials_cannot_be_encoded(credential: str) -> None:
    with pytest.raises(ValueError, match="credential"):
        Match(100, PalmCredential(credential))


def test_identify_timeout_rounds_up_to_whole_milliseconds() -> None:
    assert Identify.after(0.0001).timeout_ms == 1
    assert Identify.after(2.5).seconds == 2.5
    with pytest.raises(ValueError, match="timeout"):
        Identify(0)
