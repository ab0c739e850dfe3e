"""The `amazon-one` palm-scanner driver: the adapter's protocol over pyusb bulk endpoints.

The driver holds at most one `UsbLink` (`UsbSession`). When the device disappears (ENODEV),
the link is disposed, health says so, and the next call re-finds the device through the shared
`Reconnector` (exponential backoff, bounded by the caller's deadline). All device I/O happens
on the calling thread under one lock; `cancel()` only raises a flag that the waiting
`identify` polls every `CANCEL_POLL_INTERVAL_S`, so two threads never share the endpoints.

Options (config `[devices.palm_scanner]`): `vendor_id`, `product_id` (required),
`serial_number` (take only this unit), `interface` (default 0), `response_timeout_s`
(default 1 s: how long a command may wait for its immediate answer), `backoff_initial_s`,
`backoff_max_s` (re-find schedule after an unplug).
"""

from __future__ import annotations

from typing import ClassVar

from drivers.base import (
    DEFAULT_BACKOFF_INITIAL_S,
    DEFAULT_BACKOFF_MAX_S,
    Backoff,
    DeviceInfo,
    require_positive,
)
from drivers.errors import (
    DeviceDisconnected,
    DeviceError,
    DeviceOperationError,
    DeviceTimeout,
    FrameError,
    ProtocolError,
    ReconnectInterrupted,
)
from drivers.outcomes import Cancelled, TimedOut
from drivers.palm.identity import IdentifyResult, Matched, NoMatch
from drivers.palm.protocol import (
    MAX_CONFIDENCE_BP,
    MAX_FRAME_SIZE,
    MAX_RESENDS,
    MAX_SEQ,
    NO_SEQ,
    Armed,
    Cancel,
    CancelledResult,
    Command,
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
    decode_frame,
    decode_response,
    encode_message,
)
from drivers.palm.scanner import DEFAULT_IDENTIFY_TIMEOUT_S, PalmScanner, check_identify_timeout
from drivers.usb.driver import UsbDriver
from drivers.usb.link import LinkSpec, UsbLink, UsbSelector

DEFAULT_RESPONSE_TIMEOUT_S = 1.0
# How often a waiting identify looks at the cancel flag (upper bound on cancel latency).
CANCEL_POLL_INTERVAL_S = 0.05
# The device reports TIMED_OUT itself at the identify deadline; the host waits this much
# longer for that report before cancelling on its own.
RESULT_GRACE_S = 0.5
# Stale frames left over from an earlier session are read and dropped on connect.
MAX_STALE_FRAMES = 16
STALE_READ_TIMEOUT_S = 0.01
# Within one identify, how many times a lost device is re-found and armed again.
MAX_REARMS = 3
LINK = LinkSpec(device_name="palm scanner", read_size=MAX_FRAME_SIZE)


class AmazonOneScanner(UsbDriver, PalmScanner):
    """Amazon One palm scanner (or anything speaking `drivers.palm.protocol`) over pyusb."""

    driver_name: ClassVar[str] = "amazon-one"

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        serial_number: str | None = None,
        interface: int = 0,
        response_timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S,
        backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
    ) -> None:
        super().__init__()
        require_positive(response_timeout_s=response_timeout_s)
        self._start_usb(
            UsbSelector(vendor_id, product_id, serial_number, interface),
            LINK,
            Backoff(backoff_initial_s, backoff_max_s),
        )
        self._response_timeout = response_timeout_s
        self._seq = NO_SEQ
        self._bad_frames = 0
        #: Frames asked for again with RESEND (for health pages and tests).
        self.resends = 0

    # -- lifecycle -----------------------------------------------------------------------

    def _on_connect(self, link: UsbLink) -> DeviceInfo:
        return self._handshake(link)

    def _handshake(self, link: UsbLink) -> DeviceInfo:
        for _ in range(MAX_STALE_FRAMES):
            if link.read(STALE_READ_TIMEOUT_S) is None:
                break
        reply = self._command(link, GetInfo(), "GET_INFO")
        if not isinstance(reply, Info):
            raise ProtocolError(f"unexpected answer {reply.TYPE.name} to GET_INFO")
        return DeviceInfo(
            model=reply.model,
            firmware=reply.firmware,
            serial_number=reply.serial_number,
            driver=self.driver_name,
            port=link.location,
        )

    # -- operations ----------------------------------------------------------------------

    def identify(self, timeout: float = DEFAULT_IDENTIFY_TIMEOUT_S) -> IdentifyResult:
        check_identify_timeout(timeout)
        if not self.is_open:
            raise DeviceOperationError("palm scanner is not open")
        with self._io_lock:
            self._cancel_requested.clear()
            deadline = self._clock() + timeout
            for attempt in range(MAX_REARMS + 1):
                try:
                    link = self._session.current(deadline)
                except ReconnectInterrupted:
                    return Cancelled()  # cancelled while the unplugged device was awaited
                try:
                    return self._identify_on(link, deadline - self._clock(), deadline)
                except DeviceDisconnected as error:
                    # Unplugged (or replugged since the last call): re-find it and arm
                    # again for the time left; the shopper simply presents the palm again.
                    self._session.lost(error)
                    if attempt == MAX_REARMS:
                        raise
                except DeviceError as error:
                    self._monitor.error(error)
                    raise
            raise AssertionError("unreachable")  # pragma: no cover

    def _identify_on(self, link: UsbLink, timeout: float, deadline: float) -> IdentifyResult:
        if timeout <= 0:  # the time went into re-finding the device
            return TimedOut()
        seq = self._arm(link, Identify.after(timeout))
        give_up_at = deadline + RESULT_GRACE_S
        while True:
            if self._cancel_requested.is_set():
                return self._abort(link, seq, Cancelled())
            now = self._clock()
            if now >= give_up_at:
                return self._abort(link, seq, TimedOut())
            response = self._receive(link, seq, min(give_up_at, now + CANCEL_POLL_INTERVAL_S))
            if response is not None:
                return _result(response)

    def _arm(self, link: UsbLink, command: Identify) -> int:
        """Send IDENTIFY; on BUSY (still armed by an abandoned session) cancel and retry once."""
        for attempt in range(2):
            seq = self._next_seq()
            reply = self._exchange(link, command, seq, "IDENTIFY")
            if isinstance(reply, Armed):
                return seq
            if isinstance(reply, Error) and reply.code is ErrorCode.BUSY and attempt == 0:
                self._command(link, Cancel(), "CANCEL")
                continue
            raise _unexpected(reply, "IDENTIFY")
        raise ProtocolError("palm scanner stayed busy after CANCEL")  # pragma: no cover

    def _abort(self, link: UsbLink, seq: int, result: IdentifyResult) -> IdentifyResult:
        """Cancel on the device and settle the identification as `result`.

        A result that crossed the CANCEL on the wire is dropped: the caller gave up on it.
        """
        cancel_seq = self._next_seq()
        self._send(link, Cancel(), cancel_seq)
        settle_by = self._clock() + self._response_timeout
        self._receive(link, seq, settle_by)
        self._receive(link, cancel_seq, settle_by)
        return result

    # -- request/response ----------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % MAX_SEQ + 1
        return self._seq

    def _send(self, link: UsbLink, command: Command, seq: int) -> None:
        link.write(encode_message(command, seq), self._response_timeout)

    def _command(self, link: UsbLink, command: Command, name: str) -> Response:
        return self._exchange(link, command, self._next_seq(), name)

    def _exchange(self, link: UsbLink, command: Command, seq: int, name: str) -> Response:
        """Send `command` and return its immediate answer; `DeviceTimeout` if none comes."""
        self._send(link, command, seq)
        reply = self._receive(link, seq, self._clock() + self._response_timeout)
        if reply is None:
            raise DeviceTimeout(
                f"palm scanner did not answer {name} within {self._response_timeout:g} s"
            )
        return reply

    def _receive(self, link: UsbLink, seq: int, deadline: float) -> Response | None:
        """The next response carrying `seq`, or None at `deadline`.

        Frames for other sequence numbers are stale and dropped. A frame that fails to decode
        is asked for again with RESEND; `MAX_RESENDS` bad frames in a row is a `ProtocolError`.
        """
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            raw = link.read(remaining)
            if raw is None:
                return None
            try:
                frame = decode_frame(raw)
            except FrameError:
                self._bad_frames += 1
                if self._bad_frames > MAX_RESENDS:
                    self._bad_frames = 0
                    raise ProtocolError(
                        f"palm scanner sent {MAX_RESENDS + 1} corrupt frames in a row"
                    ) from None
                self.resends += 1
                self._send(link, Resend(), NO_SEQ)
                continue
            self._bad_frames = 0
            response = decode_response(frame)
            if isinstance(response, Error) and frame.seq == NO_SEQ:
                raise ProtocolError(f"palm scanner rejected a command ({response.code.name})")
            if frame.seq == seq:
                return response


def _unexpected(reply: Response, name: str) -> DeviceError:
    if isinstance(reply, Error):
        if reply.code is ErrorCode.SENSOR_FAULT:
            return DeviceOperationError("palm scanner reports a sensor fault")
        return ProtocolError(f"palm scanner refused {name} ({reply.code.name})")
    return ProtocolError(f"unexpected answer {reply.TYPE.name} to {name}")


def _result(response: Response) -> IdentifyResult:
    """The identification outcome carried by a terminal response."""
    if isinstance(response, Match):
        return Matched(response.credential, response.confidence_bp / MAX_CONFIDENCE_BP)
    if isinstance(response, NoMatchResult):
        return NoMatch()
    if isinstance(response, CancelledResult):
        return Cancelled()
    if isinstance(response, TimedOutResult):
        return TimedOut()
    if isinstance(response, Armed | Ok | Info):
        raise ProtocolError(f"unexpected {response.TYPE.name} while waiting for a palm")
    raise _unexpected(response, "IDENTIFY")
