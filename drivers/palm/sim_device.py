"""The simulated palm scanner's firmware: the device side of `drivers.palm.protocol`.

It keeps enrolled identities (palm id -> credential), takes palms presented by a test or by
config, arms on IDENTIFY and answers MATCH / NO_MATCH / TIMED_OUT / CANCELLED like a device
would. It knows nothing of USB: `SimulatedPalmBackend` feeds it OUT transfers (`receive`) and
asks it for IN transfers (`transmit`, which blocks like a bulk read until a frame is due).

Faults it injects itself (USB-level faults, stalls and unplug, belong to the backend):
`drop_commands(n)` ignores the next n commands (the host times out), `garble_responses(n)`
corrupts the next n IN transfers (the host asks again with RESEND and gets a clean copy).
Palm ids are test labels ("alice"): the simulator holds no biometric data either.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from drivers.errors import FrameError, ProtocolError
from drivers.palm.identity import PalmCredential
from drivers.palm.protocol import (
    HEADER,
    MAX_CONFIDENCE_BP,
    NO_SEQ,
    Armed,
    Cancel,
    CancelledResult,
    Error,
    ErrorCode,
    GetInfo,
    Identify,
    Info,
    Match,
    NoMatchResult,
    Ok,
    Resend,
    Response,
    TimedOutResult,
    decode_command,
    decode_frame,
    encode_message,
)
from drivers.usb.sim_backend import PoweredOff

SIM_MODEL = "Amazon One (simulated)"
SIM_FIRMWARE = "sim-1.0.0"
SIM_SERIAL = "SIM-PALM-0001"
DEFAULT_SCAN_TIME_S = 0.05
DEFAULT_CONFIDENCE_BP = 9_900


@dataclass
class _Arming:
    seq: int
    deadline: float
    palm: str | None = None
    palm_read_at: float = 0.0


def _garble(frame: bytes, style: int) -> bytes:
    """Corrupt a frame in one of three ways, all of which the CRC or the header catches."""
    if style % 3 == 0:
        return frame[:-1] + bytes([frame[-1] ^ 0xFF])  # checksum byte flipped
    if style % 3 == 1:
        return frame[: HEADER.size]  # cut short
    return frame[:3] + bytes([frame[3] ^ 0x5A]) + frame[4:]  # type byte flipped


class SimulatedPalmDevice:
    """Thread-safe: tests drive it from their own thread while the driver talks to it."""

    def __init__(
        self,
        model: str = SIM_MODEL,
        firmware: str = SIM_FIRMWARE,
        serial_number: str = SIM_SERIAL,
        scan_time_s: float = DEFAULT_SCAN_TIME_S,
        confidence_bp: int = DEFAULT_CONFIDENCE_BP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= confidence_bp <= MAX_CONFIDENCE_BP:
            raise ValueError(f"confidence must be 0..{MAX_CONFIDENCE_BP} basis points")
        self.info = Info(model, firmware, serial_number)
        self.scan_time_s = scan_time_s
        self.confidence_bp = confidence_bp
        self._clock = clock
        self._cond = threading.Condition()
        self._identities: dict[str, PalmCredential] = {}
        self._presented: deque[str] = deque()
        self._held_palm: str | None = None
        self._out: deque[bytes] = deque()
        self._last_sent: bytes | None = None
        self._armed: _Arming | None = None
        self._powered = True
        self._drop_commands = 0
        self._garble_responses = 0
        self._garbled = 0
        #: Counters for tests: commands decoded, RESENDs served, corrupt commands seen.
        self.commands_received = 0
        self.resends_served = 0
        self.bad_commands = 0

    # -- control (tests, config) ----------------------------------------------------------

    def enroll(self, palm_id: str, credential: str) -> None:
        """Enrol `palm_id` (a label) as the identity `credential` (opaque token/badge id)."""
        Match(self.confidence_bp, PalmCredential(credential))  # validates the credential
        with self._cond:
            self._identities[palm_id] = PalmCredential(credential)

    def present_palm(self, palm_id: str) -> None:
        """Hold a palm over the sensor once: read by the current or the next IDENTIFY."""
        with self._cond:
            self._presented.append(palm_id)
            self._cond.notify_all()

    def hold_palm(self, palm_id: str | None) -> None:
        """Keep `palm_id` over the sensor for every IDENTIFY (None: take it away)."""
        with self._cond:
            self._held_palm = palm_id
            self._cond.notify_all()

    def drop_commands(self, count: int = 1) -> None:
        with self._cond:
            self._drop_commands += count

    def garble_responses(self, count: int = 1) -> None:
        with self._cond:
            self._garble_responses += count

    @property
    def armed(self) -> bool:
        with self._cond:
            return self._armed is not None

    # -- power (the backend's plug/unplug) ------------------------------------------------

    def power_off(self) -> None:
        with self._cond:
            self._powered = False
            self._cond.notify_all()

    def power_on(self) -> None:
        """Boot: disarmed, nothing queued; enrolments and held palm survive (flash)."""
        with self._cond:
            self._powered = True
            self._armed = None
            self._out.clear()
            self._last_sent = None
            self._cond.notify_all()

    # -- the USB side ---------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """One bulk OUT transfer from the host."""
        with self._cond:
            self._require_power()
            if self._drop_commands:
                self._drop_commands -= 1
                return
            try:
                frame = decode_frame(data)
            except FrameError:
                self.bad_commands += 1
                self._queue(Error(ErrorCode.BAD_FRAME), NO_SEQ)
                return
            try:
                command = decode_command(frame)
            except ProtocolError:
                self._queue(Error(ErrorCode.BAD_REQUEST), frame.seq)
                return
            self.commands_received += 1
            self._handle(command, frame.seq)
            self._cond.notify_all()

    def transmit(self, timeout_s: float | None) -> bytes | None:
        """The next IN transfer, waiting up to `timeout_s` (None: forever); None on timeout."""
        deadline = None if timeout_s is None else self._clock() + timeout_s
        with self._cond:
            while True:
                self._require_power()
                now = self._clock()
                self._advance(now)
                if self._out:
                    return self._send_next()
                wake_at = self._next_event_at()
                if deadline is not None:
                    if now >= deadline:
                        return None
                    wake_at = deadline if wake_at is None else min(wake_at, deadline)
                self._cond.wait(None if wake_at is None else max(0.0, wake_at - now))

    # -- internals (called with the lock held) --------------------------------------------

    def _require_power(self) -> None:
        if not self._powered:
            raise PoweredOff

    def _queue(self, message: Response, seq: int) -> None:
        self._out.append(encode_message(message, seq))

    def _send_next(self) -> bytes:
        frame = self._out.popleft()
        self._last_sent = frame
        if self._garble_responses:
            self._garble_responses -= 1
            self._garbled += 1
            return _garble(frame, self._garbled)
        return frame

    def _handle(self, command: object, seq: int) -> None:
        if isinstance(command, GetInfo):
            self._queue(self.info, seq)
        elif isinstance(command, Identify):
            if self._armed is not None:
                self._queue(Error(ErrorCode.BUSY), seq)
                return
            deadline = self._clock() + command.seconds
            self._armed = _Arming(seq, deadline)
            self._queue(Armed(), seq)
        elif isinstance(command, Cancel):
            if self._armed is not None:
                self._queue(CancelledResult(), self._armed.seq)
                self._armed = None
            self._queue(Ok(), seq)
        elif isinstance(command, Resend):
            self.resends_served += 1
            if self._last_sent is None:
                self._queue(Error(ErrorCode.BAD_REQUEST), NO_SEQ)
            else:
                self._out.appendleft(self._last_sent)

    def _advance(self, now: float) -> None:
        """Let time pass for an armed device: read a palm, or give up at the deadline."""
        armed = self._armed
        if armed is None:
            return
        if armed.palm is None:
            palm = self._presented.popleft() if self._presented else self._held_palm
            if palm is not None:
                armed.palm = palm
                armed.palm_read_at = now + self.scan_time_s
        palm_read = armed.palm is not None and armed.palm_read_at <= min(now, armed.deadline)
        if palm_read:
            credential = self._identities.get(armed.palm or "")
            if credential is None:
                self._queue(NoMatchResult(), armed.seq)
            else:
                self._queue(Match(self.confidence_bp, credential), armed.seq)
            self._armed = None
        elif now >= armed.deadline:
            self._queue(TimedOutResult(), armed.seq)
            self._armed = None

    def _next_event_at(self) -> float | None:
        armed = self._armed
        if armed is None:
            return None
        if armed.palm is not None:
            return min(armed.palm_read_at, armed.deadline)
        return armed.deadline
