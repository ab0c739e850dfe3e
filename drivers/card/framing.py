"""The link frame codec: `STX | payload | ETX | LRC`, plus ACK/NAK control bytes.

- STX 0x02 opens a frame, ETX 0x03 closes it, LRC is the XOR of every payload byte and ETX
  (STX excluded): the convention of Transbank-style ECR readers and PIN pads.
- Payloads are printable ASCII (0x20-0x7E), at most `MAX_PAYLOAD` bytes. Binary data (EMV TLV)
  travels hex-encoded one layer up. Restricting the alphabet is what makes resynchronisation
  reliable: any control byte inside a frame proves the frame is broken.
- ACK 0x06 / NAK 0x15 travel alone, outside frames.

`FrameDecoder` is incremental: feed it whatever `read()` returned (a byte, half a frame, three
frames and some noise) and it returns events. It never raises and never blocks; garbage becomes
`noise` counts and `BadFrame` events, and the next STX always starts over, so the decoder
resynchronises on the next valid frame by itself. The only case it needs help with is a frame
cut short forever (a device that goes quiet mid-frame): the link calls `abort_partial()` after
its inter-byte timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from drivers.errors import FrameError

STX = 0x02
ETX = 0x03
ACK = 0x06
NAK = 0x15
PRINTABLE_MIN = 0x20
PRINTABLE_MAX = 0x7E
MAX_PAYLOAD = 4096


def lrc(data: bytes | bytearray) -> int:
    """XOR of all bytes of `data`."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def payload_allowed(payload: bytes) -> bool:
    return len(payload) <= MAX_PAYLOAD and all(PRINTABLE_MIN <= b <= PRINTABLE_MAX for b in payload)


def encode_frame(payload: bytes) -> bytes:
    """`STX payload ETX LRC`. Raises `FrameError` if the payload is not printable ASCII."""
    if not payload_allowed(payload):
        raise FrameError(f"frame payload must be printable ASCII of at most {MAX_PAYLOAD} bytes")
    body = bytes(payload) + bytes([ETX])
    return bytes([STX]) + body + bytes([lrc(body)])


def decode_frame(frame: bytes) -> bytes:
    """The payload of exactly one complete frame. Raises `FrameError`."""
    if len(frame) < 3 or frame[0] != STX or frame[-2] != ETX:
        raise FrameError("not a frame: expected STX ... ETX LRC")
    payload = frame[1:-2]
    if not payload_allowed(payload):
        raise FrameError("frame payload contains a forbidden byte")
    if lrc(frame[1:-1]) != frame[-1]:
        raise FrameError("frame LRC mismatch")
    return bytes(payload)


class Control(Enum):
    ACK = ACK
    NAK = NAK


@dataclass(frozen=True)
class Frame:
    payload: bytes

    def __repr__(self) -> str:
        # Payloads can carry card data.
        return f"Frame(<{len(self.payload)} bytes>)"


class BadFrameReason(Enum):
    LRC = "lrc mismatch"
    FORBIDDEN_BYTE = "forbidden byte inside frame"
    TOO_LONG = "payload too long"
    RESTARTED = "STX inside frame"
    TIMEOUT = "frame cut short (inter-byte timeout)"


@dataclass(frozen=True)
class BadFrame:
    """A frame started but could not be completed; the sender should be NAKed."""

    reason: BadFrameReason


Event = Frame | Control | BadFrame


class _State(Enum):
    IDLE = 0
    PAYLOAD = 1
    LRC = 2


class FrameDecoder:
    """Incremental decoder with resynchronisation. See the module docstring."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._max_payload = max_payload
        self._state = _State.IDLE
        self._buffer = bytearray()
        self.noise_bytes = 0

    @property
    def in_frame(self) -> bool:
        return self._state is not _State.IDLE

    def abort_partial(self) -> BadFrame | None:
        """Drop a partial frame (inter-byte timeout). Returns the event if there was one."""
        if not self.in_frame:
            return None
        self._reset()
        return BadFrame(BadFrameReason.TIMEOUT)

    def _reset(self) -> None:
        self._state = _State.IDLE
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for byte in data:
            self._step(byte, events)
        return events

    def _step(self, byte: int, events: list[Event]) -> None:
        if self._state is _State.IDLE:
            self._idle(byte, events)
        elif self._state is _State.PAYLOAD:
            self._payload(byte, events)
        else:
            self._lrc(byte, events)

    def _idle(self, byte: int, events: list[Event]) -> None:
        if byte == STX:
            self._state = _State.PAYLOAD
        elif byte in (ACK, NAK):
            events.append(Control(byte))
        else:
            self.noise_bytes += 1

    def _payload(self, byte: int, events: list[Event]) -> None:
        if byte == ETX:
            self._state = _State.LRC
        elif byte == STX:
            # A new frame starts inside this one: the first was cut; resynchronise on the new.
            events.append(BadFrame(BadFrameReason.RESTARTED))
            self._buffer.clear()
        elif PRINTABLE_MIN <= byte <= PRINTABLE_MAX:
            if len(self._buffer) >= self._max_payload:
                events.append(BadFrame(BadFrameReason.TOO_LONG))
                self._reset()
                self.noise_bytes += 1
            else:
                self._buffer.append(byte)
        else:
            # A control byte cannot be payload: the frame is broken. The byte itself may be
            # meaningful outside a frame (an ACK after a lost tail), so handle it as idle.
            events.append(BadFrame(BadFrameReason.FORBIDDEN_BYTE))
            self._reset()
            self._idle(byte, events)

    def _lrc(self, byte: int, events: list[Event]) -> None:
        expected = lrc(self._buffer) ^ ETX
        payload = bytes(self._buffer)
        self._reset()
        if byte == expected:
            events.append(Frame(payload))
            return
        events.append(BadFrame(BadFrameReason.LRC))
        if byte == STX:
            # The "LRC" was the start of the next frame: the broken one lost its LRC byte.
            self._state = _State.PAYLOAD
