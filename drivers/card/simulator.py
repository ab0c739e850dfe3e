"""A simulated card reader: the device side of the protocol on a pty pair, with fault injection.

The simulator owns the master side of a pty (`pty.openpty()`, raw mode); the driver opens the
slave side by path through pyserial, exactly like a USB-serial reader, so the real tty code
path runs. A symlink in a private directory gives a path that survives unplug/replug (like
`/dev/serial/by-id/...`): unplug closes the pty (the driver's next read fails with EIO), replug
opens a new one and repoints the link.

It runs `FramedLink` from `link.py`, the same link layer as the driver, and overrides its two
hooks to inject faults on demand (all thread-safe, all counted down):

    corrupt_lrc(n)        the next n frames it sends go out first with a wrong LRC
    add_noise(data, n)    garbage written before each of the next n frames
    split_writes(k, d)    every write goes out in k-byte pieces, d seconds apart
    nak_frames(n)         NAK the next n intact frames from the host (a NAK storm)
    go_silent(n)          ignore the next n frames: no ACK, no answer (None: forever)
    present_after(s)      wait s seconds after arming before presenting the card
    hold_cards(on)        stay armed without presenting a card (until cancel)
    fail_next(code)       end the next transaction with ER|code instead of a card
    unplug() / replug()   the device disappears / comes back at the same path
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pty
import select
import tempfile
import threading
import time
import tty
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from drivers.card.deck import DeckCard, default_deck
from drivers.card.framing import encode_frame
from drivers.card.link import FramedLink, LinkTiming, Verdict
from drivers.card.protocol import (
    Accepted,
    Cancel,
    Command,
    ErrorCode,
    ErrorResponse,
    Identify,
    IdentifyResponse,
    ReaderState,
    Response,
    StartTransaction,
    Status,
    StatusResponse,
    Verb,
    decode_command,
)
from drivers.errors import DeviceError, ProtocolError

LINK_NAME = "card-reader"
TICK_S = 0.01  # main loop granularity: how late a fault command or a card may be
CONTROL_TIMEOUT_S = 5.0  # how long unplug()/replug()/stop() wait for the loop to comply
DEFAULT_MODEL = "POSD-SIM-1"
DEFAULT_FIRMWARE = "1.0.0"
DEFAULT_SERIAL = "SIM0001"
DEFAULT_NOISE = b"\x00\xff\x7f~noise~\x03\x13\x11"
LRC_CORRUPTION = 0xFF


@dataclass
class Faults:
    """Pending faults; every field is read and counted down under the simulator's lock."""

    bad_lrc: int = 0
    noise: bytes = b""
    noise_frames: int = 0
    split_size: int = 0
    split_delay: float = 0.0
    nak_frames: int = 0
    silent_frames: int = 0
    silent_forever: bool = False
    present_after: float = 0.0
    hold: bool = False
    fail_with: deque[ErrorCode] = field(default_factory=deque)


class PtyTransport:
    """`link.Transport` over the pty master fd, with split/delayed writes."""

    def __init__(self, fd: int, sim: CardReaderSimulator) -> None:
        self._fd = fd
        self._sim = sim

    def read(self, max_bytes: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            return os.read(self._fd, max_bytes)
        except OSError:
            # EIO: no slave side open right now (never here: we hold one). Treat as quiet.
            return b""

    def write(self, data: bytes) -> None:
        size, delay = self._sim._split()
        pieces = [data[i : i + size] for i in range(0, len(data), size)] if size else [data]
        for index, piece in enumerate(pieces):
            if index and delay:
                time.sleep(delay)
            with contextlib.suppress(OSError):
                os.write(self._fd, piece)


class _DeviceLink(FramedLink):
    """The device's link: same protocol, plus the faults that touch frames."""

    def __init__(self, transport: PtyTransport, timing: LinkTiming, sim: CardReaderSimulator):
        super().__init__(transport, timing)
        self._sim = sim

    def _wire_frame(self, payload: bytes, attempt: int) -> bytes:
        frame = encode_frame(payload)
        if attempt == 0 and self._sim._take("bad_lrc"):
            frame = frame[:-1] + bytes([frame[-1] ^ LRC_CORRUPTION])
        return self._sim._take_noise() + frame

    def _accept(self, payload: bytes) -> Verdict:
        if self._sim._silenced():
            return Verdict.IGNORE
        return Verdict.NAK if self._sim._take("nak_frames") else Verdict.ACK


class CardReaderSimulator:
    """See the module docstring. Use as a context manager or `start()`/`stop()`."""

    def __init__(
        self,
        deck: Iterable[DeckCard] | None = None,
        *,
        timing: LinkTiming | None = None,
        model: str = DEFAULT_MODEL,
        firmware: str = DEFAULT_FIRMWARE,
        serial_number: str = DEFAULT_SERIAL,
        directory: str | None = None,
    ) -> None:
        self._deck: Iterator[DeckCard] = itertools.cycle(tuple(deck or default_deck()))
        self._queued: deque[DeckCard] = deque()
        self._timing = timing or LinkTiming()
        self._identity = IdentifyResponse(model, firmware, serial_number)
        self._own_dir = directory is None
        self._dir = Path(directory or tempfile.mkdtemp(prefix="posd-sim-"))
        self.port = str(self._dir / LINK_NAME)
        self._lock = threading.Lock()
        self._faults = Faults()
        self._fds: tuple[int, int] | None = None
        self._link: _DeviceLink | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._plugged = threading.Event()
        self._want_plugged = True
        self._changed = threading.Event()
        self.armed = False
        self._armed_at = 0.0
        self.received: list[Command] = []
        self.presented: list[str] = []
        self.plug_count = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            return self
        self._plug()
        self._thread = threading.Thread(target=self._run, name="card-reader-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(CONTROL_TIMEOUT_S)
            self._thread = None
        self._unplug()
        if self._own_dir:
            with contextlib.suppress(OSError):
                self._dir.rmdir()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def plugged(self) -> bool:
        return self._plugged.is_set()

    @property
    def link(self) -> FramedLink | None:
        return self._link

    def unplug(self) -> None:
        """Close the device side; returns once the driver's next I/O will fail."""
        self._request_plug(False)

    def replug(self) -> None:
        """A new pty appears behind the same `port` path."""
        self._request_plug(True)

    def _request_plug(self, plugged: bool) -> None:
        with self._lock:
            self._want_plugged = plugged
        self._changed.set()
        target = self._plugged if plugged else None
        deadline = time.monotonic() + CONTROL_TIMEOUT_S
        while self.plugged != plugged and time.monotonic() < deadline:
            if target is not None:
                target.wait(TICK_S)
            else:
                time.sleep(TICK_S)

    def _plug(self) -> None:
        master, slave = pty.openpty()
        tty.setraw(master)
        tty.setraw(slave)  # the line discipline would otherwise echo and eat 0x03 as ^C
        self._fds = (master, slave)
        self._link = _DeviceLink(PtyTransport(master, self), self._timing, self)
        temp = self._dir / f".{LINK_NAME}.tmp"
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        temp.symlink_to(os.ttyname(slave))
        temp.replace(self.port)
        self.armed = False
        self.plug_count += 1
        self._plugged.set()

    def _unplug(self) -> None:
        self._plugged.clear()
        with contextlib.suppress(FileNotFoundError):
            Path(self.port).unlink()
        if self._fds is not None:
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds = None
        self._link = None
        self.armed = False

    # -- fault injection (any thread) -------------------------------------------------------

    def corrupt_lrc(self, frames: int = 1) -> None:
        with self._lock:
            self._faults.bad_lrc += frames

    def add_noise(self, data: bytes = DEFAULT_NOISE, frames: int = 1) -> None:
        with self._lock:
            self._faults.noise = data
            self._faults.noise_frames += frames

    def split_writes(self, size: int = 1, delay: float = 0.0) -> None:
        with self._lock:
            self._faults.split_size = size
            self._faults.split_delay = delay

    def nak_frames(self, frames: int) -> None:
        with self._lock:
            self._faults.nak_frames += frames

    def go_silent(self, frames: int | None = None) -> None:
        with self._lock:
            if frames is None:
                self._faults.silent_forever = True
            else:
                self._faults.silent_frames += frames

    def present_after(self, seconds: float) -> None:
        with self._lock:
            self._faults.present_after = seconds

    def hold_cards(self, hold: bool = True) -> None:
        with self._lock:
            self._faults.hold = hold

    def fail_next(self, code: ErrorCode) -> None:
        with self._lock:
            self._faults.fail_with.append(code)

    def queue_card(self, card: DeckCard) -> None:
        """Present `card` next instead of the deck's next card."""
        with self._lock:
            self._queued.append(card)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = Faults()

    def _take(self, name: str) -> bool:
        with self._lock:
            left: int = getattr(self._faults, name)
            if left <= 0:
                return False
            setattr(self._faults, name, left - 1)
            return True

    def _take_noise(self) -> bytes:
        with self._lock:
            if self._faults.noise_frames <= 0:
                return b""
            self._faults.noise_frames -= 1
            return self._faults.noise

    def _split(self) -> tuple[int, float]:
        with self._lock:
            return self._faults.split_size, self._faults.split_delay

    def _silenced(self) -> bool:
        return self._faults.silent_forever or self._take("silent_frames")

    # -- device behaviour -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._apply_plug_request()
            link = self._link
            if link is None:
                self._changed.wait(TICK_S)
                continue
            try:
                payload = link.receive(TICK_S)
                if payload is not None:
                    self._on_frame(link, payload)
                self._maybe_present(link)
            except DeviceError:
                continue  # the host did not ACK in time: a real device drops the message too

    def _apply_plug_request(self) -> None:
        if not self._changed.is_set():
            return
        self._changed.clear()
        with self._lock:
            want = self._want_plugged
        if want and not self.plugged:
            self._plug()
        elif not want and self.plugged:
            self._unplug()

    def _send(self, link: _DeviceLink, response: Response) -> None:
        link.send(response.encode())

    def _on_frame(self, link: _DeviceLink, payload: bytes) -> None:
        try:
            command = decode_command(payload)
        except ProtocolError:
            self._send(link, ErrorResponse(ErrorCode.BAD_REQUEST))
            return
        self.received.append(command)
        if isinstance(command, Identify):
            self._send(link, self._identity)
        elif isinstance(command, Status):
            self._send(link, StatusResponse(ReaderState.ARMED if self.armed else ReaderState.IDLE))
        elif isinstance(command, StartTransaction):
            if self.armed:
                self._send(link, ErrorResponse(ErrorCode.BUSY))
                return
            self.armed = True
            self._armed_at = time.monotonic()
            self._send(link, Accepted(Verb.START))
        elif isinstance(command, Cancel):
            was_armed, self.armed = self.armed, False
            if was_armed:
                self._send(link, ErrorResponse(ErrorCode.CANCELLED))
            self._send(link, Accepted(Verb.CANCEL))

    def _maybe_present(self, link: _DeviceLink) -> None:
        if not self.armed:
            return
        with self._lock:
            if self._faults.hold or time.monotonic() - self._armed_at < self._faults.present_after:
                return
            failure = self._faults.fail_with.popleft() if self._faults.fail_with else None
            card = None if failure else (self._queued.popleft() if self._queued else None)
        self.armed = False
        if failure is not None:
            self._send(link, ErrorResponse(failure))
            return
        card = card or next(self._deck)
        self.presented.append(card.label)
        self._send(link, card.response())
