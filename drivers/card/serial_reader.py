"""The serial card-reader driver: pyserial + the framed protocol of `protocol.py`.

`serial.serial_for_url` opens the port, so a device path (`/dev/ttyUSB0`, a pty), a
`socket://host:port` bridge and `loop://` all work. The port's read timeout is set once to a
short poll interval (pyserial reconfigures the tty on every timeout change) and the link layer
enforces its own deadlines on top.

Unplug: pyserial raises `SerialException` (EIO on a tty); the driver closes the port, reports
`connected=False` in health and reconnects with exponential backoff. An unplug during
`read_card` does not fail the read at once: the driver keeps trying to reconnect until the
read's deadline and re-arms the reader when it is back (no card was read, so arming again
cannot capture twice).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import serial

from drivers.base import (
    DEFAULT_BACKOFF_INITIAL_S,
    DEFAULT_BACKOFF_MAX_S,
    Backoff,
    DeviceInfo,
    Reconnector,
    require_positive,
)
from drivers.card.carddata import CardData
from drivers.card.emv import card_from_tlv
from drivers.card.link import (
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_INTER_BYTE_TIMEOUT_S,
    DEFAULT_MAX_RESENDS,
    FramedLink,
    LinkTiming,
)
from drivers.card.protocol import (
    Accepted,
    Cancel,
    Command,
    EmvData,
    ErrorCode,
    ErrorResponse,
    Identify,
    IdentifyResponse,
    MagstripeData,
    ReaderState,
    Response,
    StartTransaction,
    Status,
    StatusResponse,
    Verb,
    decode_response,
)
from drivers.card.reader import DEFAULT_READ_TIMEOUT_S, CardReader
from drivers.card.results import CardRead, CardRemoved, CardUnreadable, ReadResult
from drivers.card.tracks import card_from_track_texts
from drivers.errors import (
    DeviceDisconnected,
    DeviceError,
    DeviceInitError,
    DeviceOperationError,
    DeviceTimeout,
    OptionError,
    ProtocolError,
    ReaderBusy,
    ReconnectInterrupted,
    TlvError,
)
from drivers.outcomes import Cancelled, TimedOut

DEFAULT_BAUDRATE = 115200
DEFAULT_RESPONSE_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.02  # pyserial read timeout; bounds how late a deadline is noticed
WRITE_TIMEOUT_S = 1.0
CANCEL_CHECK_S = 0.05  # how often a waiting read looks at the cancel flag

T = TypeVar("T")
log = logging.getLogger(__name__)  # messages carry ports and error codes, never card data

# Reader error codes that end a transaction in the ordinary way: returned, never raised.
_OUTCOMES: dict[ErrorCode, ReadResult] = {
    ErrorCode.CARD_REMOVED: CardRemoved(),
    ErrorCode.TIMEOUT: TimedOut(),
    ErrorCode.CANCELLED: Cancelled(),
    ErrorCode.CARD_UNREADABLE: CardUnreadable(),
}
# Reader error codes that are faults: raised.
_FAULTS: dict[ErrorCode, type[DeviceOperationError]] = {
    ErrorCode.BUSY: ReaderBusy,
    ErrorCode.BAD_REQUEST: ProtocolError,
}


def fault_for(code: ErrorCode) -> DeviceOperationError:
    """The error for a fault code; an outcome code here is a reply the protocol forbids."""
    fault = _FAULTS.get(code, ProtocolError)
    return fault(f"reader reported {code.value}")


class _Port(Protocol):
    """The part of a pyserial port we use (every `serial_for_url` class has it)."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


class SerialTransport:
    """`link.Transport` over an open pyserial port; pyserial failures become our errors."""

    def __init__(self, port: _Port) -> None:
        self._port = port

    def read(self, max_bytes: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        try:
            while True:
                waiting = self._port.in_waiting
                data = self._port.read(min(waiting, max_bytes) if waiting else 1)
                if data or time.monotonic() >= deadline:
                    return bytes(data)
        except (serial.SerialException, OSError) as error:
            raise DeviceDisconnected(f"serial read failed ({type(error).__name__})") from error

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except serial.SerialTimeoutException as error:
            raise DeviceTimeout("serial write timed out") from error
        except (serial.SerialException, OSError) as error:
            raise DeviceDisconnected(f"serial write failed ({type(error).__name__})") from error

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()  # an unplugged port may fail to close: nothing left to release


class SerialCardReader(CardReader):
    """Card reader on a serial port. Options are plain values so config can pass them.

    Options (config `[devices.card_reader]`): `port` (any pyserial URL), `baudrate`,
    `response_timeout_s` (the wait for a command's immediate answer), `ack_timeout_s`,
    `inter_byte_timeout_s`, `max_resends` (link layer), `backoff_initial_s`,
    `backoff_max_s` (reconnect schedule after an unplug).
    """

    driver_name = "serial"

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        response_timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
        inter_byte_timeout_s: float = DEFAULT_INTER_BYTE_TIMEOUT_S,
        max_resends: int = DEFAULT_MAX_RESENDS,
        backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
    ) -> None:
        super().__init__()
        require_positive(
            baudrate=baudrate,
            response_timeout_s=response_timeout_s,
            ack_timeout_s=ack_timeout_s,
            inter_byte_timeout_s=inter_byte_timeout_s,
        )
        if max_resends < 0:
            raise OptionError("max_resends", "must be >= 0")
        self.port = port
        self._baudrate = baudrate
        self._response_timeout = response_timeout_s
        self._timing = LinkTiming(ack_timeout_s, inter_byte_timeout_s, max_resends)
        self._reconnector = Reconnector(
            Backoff(backoff_initial_s, backoff_max_s), self._monitor, time.monotonic
        )
        self._lock = threading.RLock()
        self._cancel_requested = threading.Event()
        self._reading = False
        self._transport: SerialTransport | None = None
        self._link: FramedLink | None = None

    @property
    def link(self) -> FramedLink | None:
        """The current link (None while disconnected); its `stats` are useful diagnostics."""
        return self._link

    # -- lifecycle --------------------------------------------------------------------------

    def _open(self) -> None:
        with self._lock:
            try:
                self._connect()
            except DeviceError as error:
                self._monitor.error(error)
                raise

    def _close(self) -> None:
        with self._lock:
            self._drop_port()

    def _connect(self) -> FramedLink:
        try:
            port = serial.serial_for_url(
                self.port,
                baudrate=self._baudrate,
                timeout=POLL_INTERVAL_S,
                write_timeout=WRITE_TIMEOUT_S,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as error:
            raise DeviceInitError(
                f"cannot open card reader port {self.port} ({type(error).__name__})"
            ) from error
        self._transport = SerialTransport(port)
        self._link = FramedLink(self._transport, self._timing)
        try:
            info = self._identify(self._link)
        except DeviceError as error:
            self._drop_port()
            raise DeviceInitError(
                f"card reader on {self.port} did not identify: {error}"
            ) from error
        was_down = self._monitor.snapshot().disconnected_since is not None
        self._monitor.connected(info)
        if was_down:
            log.info("card reader on %s is back (%s %s)", self.port, info.model, info.firmware)
        return self._link

    def _drop_port(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self._link = None

    def _lost(self, error: DeviceDisconnected) -> None:
        log.warning("card reader on %s disconnected: %s; reconnecting", self.port, error)
        self._drop_port()
        self._reconnector.lost(error)

    def _with_link(self, deadline: float, action: Callable[[FramedLink], T]) -> T:
        """Run `action` on a connected link, reconnecting (with backoff) until `deadline`."""
        if not self.is_open:
            raise DeviceOperationError("card reader is not open")
        while True:
            link = self._link or self._reconnector.connect(self._connect, deadline)
            try:
                return action(link)
            except DeviceDisconnected as error:
                self._lost(error)
            except DeviceError as error:
                self._monitor.error(error)
                raise

    # -- requests ---------------------------------------------------------------------------

    def _request(
        self,
        link: FramedLink,
        command: Command,
        accept: Callable[[Response], bool],
    ) -> Response:
        """Send `command`, return the first response `accept`s; reader faults are raised.

        An ER with an outcome code (CANCELLED, TIMEOUT...) is the end of an earlier
        transaction (the one `CN` disarms, or one the host lost track of), not an answer to
        `command`: it is skipped.
        """
        link.discard_pending()
        link.send(command.encode())
        deadline = time.monotonic() + self._response_timeout
        while (remaining := deadline - time.monotonic()) > 0:
            payload = link.receive(remaining)
            if payload is None:
                break
            response = decode_response(payload)
            if isinstance(response, ErrorResponse) and response.code not in _OUTCOMES:
                raise fault_for(response.code)
            if accept(response):
                return response
        raise DeviceTimeout(f"no answer to {command.encode()[:2].decode()} in time")

    def _identify(self, link: FramedLink) -> DeviceInfo:
        response = self._request(link, Identify(), lambda r: isinstance(r, IdentifyResponse))
        assert isinstance(response, IdentifyResponse)
        return DeviceInfo(
            model=response.model,
            firmware=response.firmware,
            serial_number=response.serial_number,
            driver=self.driver_name,
            port=self.port,
        )

    def _disarm(self, link: FramedLink) -> None:
        """CN, answered by OK|CN (preceded by ER|CANCELLED if a transaction was pending)."""
        self._request(link, Cancel(), _is_ok(Verb.CANCEL))

    def _deadline(self) -> float:
        return time.monotonic() + self._response_timeout

    # -- CardReader -------------------------------------------------------------------------

    def identify(self) -> DeviceInfo:
        with self._lock:
            info = self._with_link(self._deadline(), self._identify)
            self._monitor.connected(info)
            return info

    def status(self) -> ReaderState:
        def ask(link: FramedLink) -> ReaderState:
            response = self._request(link, Status(), lambda r: isinstance(r, StatusResponse))
            assert isinstance(response, StatusResponse)
            return response.state

        with self._lock:
            return self._with_link(self._deadline(), ask)

    def cancel(self) -> None:
        self._cancel_requested.set()
        self._reconnector.interrupt()
        if not self._lock.acquire(blocking=False):
            return  # a read is in progress: it sees the flag within CANCEL_CHECK_S
        try:
            if not self._reading:
                self._cancel_requested.clear()
                self._with_link(self._deadline(), self._disarm)
        finally:
            self._lock.release()

    def read_card(
        self, amount_minor: int, currency: str, timeout: float = DEFAULT_READ_TIMEOUT_S
    ) -> ReadResult:
        command = StartTransaction(amount_minor, currency)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._reading = True
            try:
                return self._with_link(
                    deadline, lambda link: self._transaction(link, command, deadline)
                )
            except ReconnectInterrupted:
                return Cancelled()  # cancelled while the unplugged reader was awaited
            finally:
                self._reading = False
                self._cancel_requested.clear()

    def _arm(self, link: FramedLink, command: StartTransaction) -> None:
        try:
            self._request(link, command, _is_ok(Verb.START))
        except ReaderBusy:
            # Armed by a transaction we lost track of (host restart): disarm and try once more.
            self._disarm(link)
            self._request(link, command, _is_ok(Verb.START))

    def _transaction(
        self, link: FramedLink, command: StartTransaction, deadline: float
    ) -> ReadResult:
        if self._cancel_requested.is_set():
            return Cancelled()  # before the reader was armed
        self._arm(link, command)
        while True:
            if self._cancel_requested.is_set():
                return self._cancel_pending(link)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                try:
                    self._disarm(link)
                except DeviceError as error:
                    self._monitor.error(error)
                return TimedOut()  # no card presented within the caller's timeout
            payload = link.receive(min(remaining, CANCEL_CHECK_S))
            if payload is None:
                continue
            response = decode_response(payload)
            if isinstance(response, ErrorResponse):
                outcome = _OUTCOMES.get(response.code)
                if outcome is None:
                    raise fault_for(response.code)
                return outcome
            if isinstance(response, MagstripeData | EmvData):
                card = _card_from(response)
                card.raise_for_problems()
                return CardRead(card)
            # Anything else is a stale answer to an earlier command: ignore it.

    def _cancel_pending(self, link: FramedLink) -> Cancelled:
        """Disarm after a host cancel; a card read that crossed the CN is discarded."""
        try:
            self._disarm(link)
        except DeviceTimeout as error:
            self._monitor.error(error)
        return Cancelled()


def _is_ok(verb: Verb) -> Callable[[Response], bool]:
    return lambda response: isinstance(response, Accepted) and response.command is verb


def _card_from(response: MagstripeData | EmvData) -> CardData:
    if isinstance(response, MagstripeData):
        return card_from_track_texts(response.track1.reveal(), response.track2.reveal())
    try:
        data = bytes.fromhex(response.tlv_hex.reveal())
    except ValueError:
        raise TlvError(0, "card data is not hex") from None
    return card_from_tlv(data, response.entry_mode)
