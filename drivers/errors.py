"""One exception hierarchy for everything under `drivers`.

`drivers` never imports the daemon, so it cannot reuse `posd.errors`; the daemon maps these to
its own errors at the boundary. Two families hang off `DriverError`:

- `DeviceError`: the device or its link misbehaves (init, I/O, timeout, unplug, protocol).
  The normal ends of a customer interaction (cancelled, nothing presented in time, card
  removed...) are not errors: they are returned as outcomes (see `drivers.base`).
- `CardDataError`: data that came from a card (or a technician's paste) is malformed.

`OptionError` (a driver option out of range) is also a `ValueError`; `DeviceTimeout` is also
a `TimeoutError` (as python-can's `CanTimeoutError`), so generic handlers catch them too.

Every message is safe to print: no PAN, no track data, no TLV values. Offsets, lengths, tag
numbers and field names are fine.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error raised on purpose by `drivers`."""

    code = "driver_error"


# -- devices -------------------------------------------------------------------------------


class DeviceError(DriverError):
    """A device could not do what was asked."""

    code = "device_error"


class OptionError(DriverError, ValueError):
    """A driver option has a value the driver cannot work with; `option` names it."""

    code = "driver_option_invalid"

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        self.reason = reason
        super().__init__(f"{option}: {reason}")


class DriverUnavailable(DeviceError):
    """The configured driver name is unknown, or its optional library is not installed."""

    code = "driver_unavailable"


class DeviceInitError(DeviceError):
    """The device could not be opened or did not identify itself."""

    code = "device_init"


class DeviceOperationError(DeviceError):
    """An operation on an open device failed."""

    code = "device_operation"


class DeviceTimeout(DeviceOperationError, TimeoutError):
    """The device (or the link to it) stopped answering in time.

    Not "no card/palm presented in time": that is the ordinary `TimedOut` outcome.
    """

    code = "device_timeout"


class DeviceDisconnected(DeviceOperationError):
    """The device went away (unplugged, port closed) and did not come back in time."""

    code = "device_disconnected"


class ReconnectInterrupted(DeviceDisconnected):
    """`cancel()` woke a call that was waiting for a lost device to come back.

    Drivers turn it into a `Cancelled` outcome for the customer interaction that was
    waiting; any other operation sees what it is, a device that is still disconnected.
    """

    code = "reconnect_interrupted"


class ProtocolError(DeviceOperationError):
    """The device spoke, but not the protocol: NAK storm, malformed or unexpected message."""

    code = "device_protocol"


class FrameError(ProtocolError):
    """Bytes from the wire that are not a well-formed frame (never quotes the bytes)."""

    code = "frame_invalid"


class EncryptedFormatError(ProtocolError):
    """A secure reader's message breaks its documented format (frame, length, checks, flags).

    Never quotes the bytes: they hold masked tracks and ciphertext."""

    code = "encrypted_format_invalid"


class ReaderEncryptionUnsupported(ProtocolError):
    """A secure reader encrypts in a way the terminal cannot hand on: a fixed key, the PIN
    variant, or no encryption at all. A reader configuration problem, not a bad swipe."""

    code = "reader_encryption_unsupported"


class ReaderBusy(DeviceOperationError):
    """The reader refused to arm: a transaction is already pending on it."""

    code = "reader_busy"


# -- card data -----------------------------------------------------------------------------


class CardDataError(DriverError, ValueError):
    """Base of every parse/validation error on card data. Never carries the data itself."""

    code = "card_data_invalid"


class TrackFormatError(CardDataError):
    """Magstripe track text does not follow ISO/IEC 7813 (sentinels, separators, fields)."""

    code = "track_format"


class TrackLrcError(TrackFormatError):
    """The track's longitudinal redundancy check character does not match its content."""

    code = "track_lrc"


class TlvError(CardDataError):
    """BER-TLV input is malformed; `offset` is the byte where the problem was found."""

    code = "tlv_invalid"

    def __init__(self, offset: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        super().__init__(f"TLV error at byte {offset}: {reason}")


class PanFormatError(CardDataError):
    """The card number is not 12-19 digits."""

    code = "pan_format"


class LuhnError(CardDataError):
    """The card number fails the Luhn mod-10 check."""

    code = "pan_luhn"


class ExpiryError(CardDataError):
    """The expiry date is not a valid YYMM (or YYMMDD) date."""

    code = "expiry_invalid"


class ServiceCodeError(CardDataError):
    """The service code is not three digits."""

    code = "service_code_invalid"


class CountryCodeError(CardDataError):
    """The ISO/IEC 7813 country code (after the separator of a PAN beginning 59) is not 3 digits."""

    code = "country_code_invalid"


class FieldAbsentError(CardDataError):
    """A field separator stands where ISO/IEC 7813 allows an absent expiry or service code.

    The track is well formed; the read lacks data a payment needs, so it is a problem.
    """

    code = "field_absent"


class CardConsistencyError(CardDataError):
    """Two sources of the same field disagree (track 1 vs track 2, EMV 5A vs 57)."""

    code = "card_inconsistent"


class KsnReplayed(CardDataError):
    """An encrypted swipe whose DUKPT counter does not advance over the reader's last one:
    a genuine reader never uses a KSN twice, so this is a swipe recorded and sent again (a
    hostile device on the USB port, or a replay of captured reports)."""

    code = "ksn_replayed"


# -- reference data ------------------------------------------------------------------------


class CardTableError(DriverError):
    """A data table shipped with the drivers (card networks, EMV tags) is inconsistent."""

    code = "card_table_invalid"
