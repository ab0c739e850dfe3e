"""The Amazon One adapter's USB wire protocol. The single reference for it.

Amazon publishes no device protocol, so this adapter defines its own; nothing outside
`drivers.palm` depends on it. Both ends (the `amazon-one` driver and the simulated device) use
this module, so they cannot drift apart.

Transport: one vendor-specific interface (class 0xFF) with one bulk OUT endpoint (host ->
device commands) and one bulk IN endpoint (device -> host responses). Each USB transfer
carries exactly one frame (an IN transfer ends with a short packet, or a zero-length packet
when the frame is a multiple of wMaxPacketSize); a frame never exceeds `MAX_FRAME_SIZE`.

Frame layout (integers big-endian)::

    offset  size  field
    0       2     magic      0xA1 0x0E
    2       1     version    0x01
    3       1     type       message type, below
    4       1     seq        sequence number: the host numbers its commands 1..255
                             (wrapping, skipping 0); a response echoes the seq of the command
                             it answers; 0 = answers no particular command
    5       2     length     payload length n, 0..MAX_PAYLOAD
    7       n     payload
    7+n     2     checksum   CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of bytes 0..7+n-1

Payload fields: `u8`, `u16`, `u32` integers; `str8` = u8 length + UTF-8 text.

Host -> device::

    0x01 GET_INFO   -                 -> INFO
    0x02 IDENTIFY   u32 timeout_ms    -> ARMED now, then one of MATCH / NO_MATCH / TIMED_OUT /
                                         CANCELLED (same seq) when a palm is read, the device's
                                         own timeout expires, or CANCEL arrives
    0x03 CANCEL     -                 -> CANCELLED (the pending IDENTIFY's seq) if armed, then OK
    0x04 RESEND     -                 -> the last IN frame again, byte for byte (its own seq);
                                         sent by the host when an IN frame fails its checksum

Device -> host::

    0x81 INFO       str8 model, str8 firmware, str8 serial
    0x82 ARMED      -
    0x83 OK         -
    0x90 MATCH      u16 confidence (basis points, 0..10000), str8 credential (printable ASCII,
                    1..MAX_CREDENTIAL_LEN: the enrolled identity's opaque token or badge id)
    0x91 NO_MATCH   -
    0x92 CANCELLED  -
    0x93 TIMED_OUT  -
    0xEE ERROR      u8 code: 1 BAD_FRAME (checksum/format, seq 0), 2 BAD_REQUEST, 3 BUSY
                    (IDENTIFY while armed), 4 SENSOR_FAULT

Host rules: a frame whose seq is not the one awaited is stale (the late answer of an abandoned
command) and is dropped; a frame that fails to decode is asked for again with RESEND, at most
`MAX_RESENDS` times; a CANCEL that crosses a result still ends the identification as cancelled.
No biometric data exists in this protocol: the device matches on board and returns identities.
"""

from __future__ import annotations

import binascii
import math
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from drivers.errors import FrameError, ProtocolError
from drivers.palm.identity import PalmCredential

MAGIC = b"\xa1\x0e"
VERSION = 1
HEADER = struct.Struct(">2sBBBH")  # magic, version, type, seq, payload length
CHECKSUM = struct.Struct(">H")
CRC_INIT = 0xFFFF
MAX_FRAME_SIZE = 512
MAX_PAYLOAD = MAX_FRAME_SIZE - HEADER.size - CHECKSUM.size
MAX_SEQ = 255
NO_SEQ = 0
MAX_RESENDS = 3
MAX_CREDENTIAL_LEN = 128
MAX_CONFIDENCE_BP = 10_000
MAX_IDENTIFY_TIMEOUT_MS = 2**32 - 1
MS_PER_S = 1000

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class ChecksumError(FrameError):
    """A frame's CRC does not match its content: corrupted in transit."""

    code = "frame_checksum"


class MessageType(IntEnum):
    GET_INFO = 0x01
    IDENTIFY = 0x02
    CANCEL = 0x03
    RESEND = 0x04
    INFO = 0x81
    ARMED = 0x82
    OK = 0x83
    MATCH = 0x90
    NO_MATCH = 0x91
    CANCELLED = 0x92
    TIMED_OUT = 0x93
    ERROR = 0xEE


class ErrorCode(IntEnum):
    BAD_FRAME = 1
    BAD_REQUEST = 2
    BUSY = 3
    SENSOR_FAULT = 4


def checksum(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (`binascii.crc_hqx` with init 0xFFFF); check value of b"123456789"
    is 0x29B1."""
    return binascii.crc_hqx(data, CRC_INIT)


# -- frames --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    # Hidden from repr: a MATCH payload holds a credential.
    payload: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 0xFF:
            raise ValueError("frame type must fit in one byte")
        if not NO_SEQ <= self.seq <= MAX_SEQ:
            raise ValueError(f"seq must be {NO_SEQ}..{MAX_SEQ}")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"payload longer than {MAX_PAYLOAD} bytes")


def encode_frame(frame: Frame) -> bytes:
    body = HEADER.pack(MAGIC, VERSION, frame.type, frame.seq, len(frame.payload)) + frame.payload
    return body + CHECKSUM.pack(checksum(body))


def decode_frame(data: bytes) -> Frame:
    """Parse exactly one frame. Raises `FrameError` (or `ChecksumError`), nothing else."""
    if len(data) < HEADER.size + CHECKSUM.size:
        raise FrameError(f"frame too short ({len(data)} bytes)")
    magic, version, kind, seq, length = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FrameError("bad frame magic")
    if version != VERSION:
        raise FrameError(f"unsupported protocol version {version}")
    if length > MAX_PAYLOAD or len(data) != HEADER.size + length + CHECKSUM.size:
        raise FrameError(f"frame length mismatch ({len(data)} bytes, header says {length})")
    end = HEADER.size + length
    (expected,) = CHECKSUM.unpack_from(data, end)
    if checksum(data[:end]) != expected:
        raise ChecksumError("frame checksum mismatch")
    return Frame(kind, seq, data[HEADER.size : end])


# -- payload fields ------------------------------------------------------------------------


class _Reader:
    """Reads payload fields in order; any shortfall or leftover is a `ProtocolError`."""

    def __init__(self, payload: bytes, what: str) -> None:
        self._data = payload
        self._offset = 0
        self._what = what

    def _take(self, size: int) -> bytes:
        if self._offset + size > len(self._data):
            raise ProtocolError(f"{self._what}: payload cut short at byte {self._offset}")
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def integer(self, shape: struct.Struct) -> int:
        value: int = shape.unpack(self._take(shape.size))[0]
        return value

    def text(self) -> str:
        raw = self._take(self.integer(_U8))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"{self._what}: text field is not UTF-8") from None

    def end(self) -> None:
        if self._offset != len(self._data):
            raise ProtocolError(f"{self._what}: {len(self._data) - self._offset} extra bytes")


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 0xFF:
        raise ValueError("text field longer than 255 bytes")
    return _U8.pack(len(raw)) + raw


def _check_credential(value: str) -> None:
    if not (0 < len(value) <= MAX_CREDENTIAL_LEN and value.isascii() and value.isprintable()):
        raise ValueError(f"credential must be 1-{MAX_CREDENTIAL_LEN} printable ASCII chars")


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Empty:
    """A message with no payload."""

    TYPE: ClassVar[MessageType]

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class GetInfo(_Empty):
    TYPE: ClassVar[MessageType] = MessageType.GET_INFO


@dataclass(frozen=True)
class Identify:
    TYPE: ClassVar[MessageType] = MessageType.IDENTIFY
    timeout_ms: int

    def __post_init__(self) -> None:
        if not 0 < self.timeout_ms <= MAX_IDENTIFY_TIMEOUT_MS:
            raise ValueError("identify timeout must be 1 ms .. 2**32-1 ms")

    @classmethod
    def after(cls, seconds: float) -> Identify:
        """IDENTIFY with a timeout of `seconds`, rounded up to whole milliseconds."""
        return cls(math.ceil(seconds * MS_PER_S))

    @property
    def seconds(self) -> float:
        return self.timeout_ms / MS_PER_S

    def payload(self) -> bytes:
        return _U32.pack(self.timeout_ms)


@dataclass(frozen=True)
class Cancel(_Empty):
    TYPE: ClassVar[MessageType] = MessageType.CANCEL


@dataclass(frozen=True)
class Resend(_Empty):
    TYPE: ClassVar[MessageType] = MessageType.RESEND


@dataclass(frozen=True)
class Info:
    TYPE: ClassVar[MessageType] = MessageType.INFO
    model: str
    firmware: str
    serial_number: str

    def payload(self) -> bytes:
        return _text(self.model) + _text(self.firmware) + _text(self.serial_number)


@dataclass(frozen=True)
class Armed(_Empty):
    TYPE: ClassVar[MessageType] = MessageType.ARMED


@dataclass(frozen=True)
class Ok(_Empty):
    TYPE: ClassVar[MessageType] = MessageType.OK


@dataclass(frozen=True)
class Match:
    TYPE: ClassVar[MessageType] = MessageType.MATCH
    confidence_bp: int
    credential: PalmCredential

    def __post_init__(self) -> None:
        if not 0 <= self.confidence_bp <= MAX_CONFIDENCE_BP:
            raise ValueError(f"confidence must be 0..{MAX_CONFIDENCE_BP} basis points")
        _check_credential(self.credential.reveal())

    def payload(self) -> bytes:
        return _U16.pack(self.confidence_bp) + _text(self.credential.reveal())


@dataclass(frozen=True)
class NoMatchResult(_Empty):
    TYPE: ClassVar[MessageType] = MessageType.NO_MATCH


@dataclass(frozen=True)
class CancelledResult(_Empty):
    TYPE: ClassVar[MessageType] = MessageType.CANCELLED


@dataclass(frozen=True)
class TimedOutResult(_Empty):
    TYPE: ClassVar[MessageType] = MessageType.TIMED_OUT


@dataclass(frozen=True)
class Error:
    TYPE: ClassVar[MessageType] = MessageType.ERROR
    code: ErrorCode

    def payload(self) -> bytes:
        return _U8.pack(self.code)


Command = GetInfo | Identify | Cancel | Resend
Response = Info | Armed | Ok | Match | NoMatchResult | CancelledResult | TimedOutResult | Error
Message = Command | Response

_EMPTY: dict[int, type[_Empty]] = {
    cls.TYPE: cls
    for cls in (GetInfo, Cancel, Resend, Armed, Ok, NoMatchResult, CancelledResult, TimedOutResult)
}
_COMMAND_TYPES = frozenset(
    {MessageType.GET_INFO, MessageType.IDENTIFY, MessageType.CANCEL, MessageType.RESEND}
)


def encode_message(message: Message, seq: int) -> bytes:
    return encode_frame(Frame(message.TYPE, seq, message.payload()))


def decode_message(frame: Frame) -> Message:
    """The message inside `frame`. Raises `ProtocolError`; messages never quote payloads."""
    kind = frame.type
    if kind in _EMPTY:
        _Reader(frame.payload, _EMPTY[kind].__name__).end()
        return _EMPTY[kind]()  # type: ignore[return-value]
    reader = _Reader(frame.payload, f"message 0x{kind:02x}")
    message: Message
    try:
        if kind == MessageType.IDENTIFY:
            message = Identify(reader.integer(_U32))
        elif kind == MessageType.INFO:
            message = Info(reader.text(), reader.text(), reader.text())
        elif kind == MessageType.MATCH:
            confidence = reader.integer(_U16)
            message = Match(confidence, PalmCredential(reader.text()))
        elif kind == MessageType.ERROR:
            message = Error(ErrorCode(reader.integer(_U8)))
        else:
            raise ProtocolError(f"unknown message type 0x{kind:02x}")
    except ValueError:
        raise ProtocolError(f"malformed message 0x{kind:02x}") from None
    reader.end()
    return message


def decode_command(frame: Frame) -> Command:
    """A host command (the device side uses this). Raises `ProtocolError`."""
    message = decode_message(frame)
    if message.TYPE not in _COMMAND_TYPES:
        raise ProtocolError(f"message 0x{frame.type:02x} is not a command")
    return message  # type: ignore[return-value]


def decode_response(frame: Frame) -> Response:
    """A device response (the host side uses this). Raises `ProtocolError`."""
    message = decode_message(frame)
    if message.TYPE in _COMMAND_TYPES:
        raise ProtocolError(f"message 0x{frame.type:02x} is not a response")
    return message  # type: ignore[return-value]
