"""The link layer over any byte transport: reliable frames with ACK/NAK and resends.

Both ends of the card-reader protocol (the host driver and the simulated device) run this same
class, so the simulator cannot drift from the driver; the simulator only overrides the two
hooks (`_wire_frame`, `_accept`) to inject faults.

Sending: write the frame, wait up to `ack_timeout_s` for ACK. A NAK or silence triggers a resend,
at most `max_resends` times (4 transmissions in all with the default 3); then `ProtocolError`
(the peer kept NAKing) or `DeviceTimeout` (it never answered).

Receiving: every complete frame with a good LRC is ACKed and queued; a bad frame (LRC mismatch,
forbidden byte, cut short by the inter-byte timeout) is NAKed so that the sender resends it.
Frames that arrive while we wait for an ACK are handled the same way (both ends may talk at
once: a cancel crossing a card read), so nothing is lost in a collision.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from drivers.card.framing import (
    ACK,
    NAK,
    BadFrame,
    BadFrameReason,
    Control,
    Event,
    Frame,
    FrameDecoder,
    encode_frame,
)
from drivers.errors import DeviceTimeout, ProtocolError

READ_CHUNK = 4096
DEFAULT_ACK_TIMEOUT_S = 0.5
DEFAULT_INTER_BYTE_TIMEOUT_S = 0.2
DEFAULT_MAX_RESENDS = 3


class Transport(Protocol):
    """A byte pipe. `read` returns b"" on timeout and raises `DeviceDisconnected` if gone."""

    def read(self, max_bytes: int, timeout: float) -> bytes: ...

    def write(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class LinkTiming:
    ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S
    inter_byte_timeout_s: float = DEFAULT_INTER_BYTE_TIMEOUT_S
    max_resends: int = DEFAULT_MAX_RESENDS


class Verdict(Enum):
    """What the receiver does with a frame that arrived intact."""

    ACK = "ack"  # accept it
    NAK = "nak"  # ask for a resend
    IGNORE = "ignore"  # neither: as if it never arrived (a deaf device)


@dataclass
class LinkStats:
    """Counters for health pages and for tests that check behaviour against the docs."""

    frames_sent: int = 0
    resends: int = 0
    naks_received: int = 0
    ack_timeouts: int = 0
    frames_received: int = 0
    naks_sent: int = 0
    bad_frames: int = 0


class FramedLink:
    def __init__(
        self,
        transport: Transport,
        timing: LinkTiming | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self.timing = timing or LinkTiming()
        self._clock = clock
        self._decoder = FrameDecoder()
        self._events: deque[Event] = deque()
        self._inbox: deque[bytes] = deque()
        self._last_byte_at = clock()
        self.stats = LinkStats()

    @property
    def noise_bytes(self) -> int:
        return self._decoder.noise_bytes

    # -- hooks (the simulator overrides these to inject faults) ------------------------

    def _wire_frame(self, payload: bytes, attempt: int) -> bytes:
        """The bytes to transmit for `payload` on transmission number `attempt` (0-based)."""
        return encode_frame(payload)

    def _accept(self, payload: bytes) -> Verdict:
        """What to do with a frame that arrived intact."""
        return Verdict.ACK

    # -- sending ------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Send one frame reliably or raise `ProtocolError` / `DeviceTimeout`."""
        encode_frame(payload)  # validate before touching the wire
        naks = 0
        for attempt in range(self.timing.max_resends + 1):
            if attempt:
                self.stats.resends += 1
            self._transport.write(self._wire_frame(payload, attempt))
            self.stats.frames_sent += 1
            answer = self._await_control(self._clock() + self.timing.ack_timeout_s)
            if answer is Control.ACK:
                return
            if answer is Control.NAK:
                naks += 1
                self.stats.naks_received += 1
            else:
                self.stats.ack_timeouts += 1
        attempts = self.timing.max_resends + 1
        if naks:
            raise ProtocolError(f"peer rejected the frame {naks} of {attempts} times")
        raise DeviceTimeout(f"no ACK after {attempts} transmissions")

    def _await_control(self, deadline: float) -> Control | None:
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Control):
                    return event
                self._handle(event)
            if not self._pump(deadline):
                return None

    # -- receiving ----------------------------------------------------------------------

    def receive(self, timeout: float) -> bytes | None:
        """The next intact frame's payload (already ACKed), or None after `timeout`."""
        deadline = self._clock() + timeout
        while True:
            self._drain_events()
            if self._inbox:
                return self._inbox.popleft()
            if not self._pump(deadline):
                self._drain_events()
                return self._inbox.popleft() if self._inbox else None

    def discard_pending(self) -> int:
        """Drop frames received but not consumed (stale answers before a new command)."""
        self._drain_events()
        count = len(self._inbox)
        self._inbox.clear()
        return count

    def _drain_events(self) -> None:
        while self._events:
            event = self._events.popleft()
            if not isinstance(event, Control):  # a stray ACK/NAK answers nothing we sent
                self._handle(event)

    def _handle(self, event: Frame | BadFrame) -> None:
        if isinstance(event, Frame):
            verdict = self._accept(event.payload)
            if verdict is Verdict.IGNORE:
                return
            if verdict is Verdict.ACK:
                self._transport.write(bytes([ACK]))
                self.stats.frames_received += 1
                self._inbox.append(event.payload)
                return
        else:
            self.stats.bad_frames += 1
            if event.reason is BadFrameReason.RESTARTED:
                return  # the new frame is already arriving; its sender resends the cut one
        self._transport.write(bytes([NAK]))
        self.stats.naks_sent += 1

    def _pump(self, deadline: float) -> bool:
        """Read once (bounded by `deadline` and the inter-byte timeout); False when past it."""
        now = self._clock()
        if now >= deadline:
            return False
        wait = deadline - now
        if self._decoder.in_frame:
            wait = min(wait, max(0.0, self._last_byte_at + self.timing.inter_byte_timeout_s - now))
        data = self._transport.read(READ_CHUNK, wait)
        now = self._clock()
        if data:
            self._last_byte_at = now
            self._events.extend(self._decoder.feed(data))
        elif (
            self._decoder.in_frame and now - self._last_byte_at >= self.timing.inter_byte_timeout_s
        ):
            aborted = self._decoder.abort_partial()
            if aborted is not None:
                self._events.append(aborted)
        return True
