"""The card-reader wire protocol: the messages inside the frames. The single reference.

Layers (bottom up)::

    serial port   any pyserial URL: /dev/ttyUSB0, /dev/pts/N, socket://host:port, loop://
    framing       STX | payload | ETX | LRC       (framing.py; LRC = XOR of payload and ETX)
    link          ACK 0x06 / NAK 0x15, resend <= 3 times on NAK or ACK timeout,
                  inter-byte timeout drops half frames, NAK on bad frames   (link.py)
    messages      printable ASCII, fields separated by '|'                  (this module)

Defaults: 115200 8N1, ACK timeout 0.5 s, inter-byte timeout 0.2 s, response timeout 2 s.

Host -> reader (commands)::

    ID                        identify
    ST|<amount>|<currency>    start a transaction: amount in minor units (1-12 digits),
                              ISO 4217 alpha currency (3 letters); the reader arms and waits
    CN                        cancel the pending transaction (harmless if none)
    SS                        status

Reader -> host (responses)::

    ID|<model>|<firmware>|<serial>   answer to ID
    OK|<command>                     ST accepted (reader armed) / CN done
    SS|<IDLE or ARMED>               answer to SS
    CD|M|<track 1>|<track 2>         card read by magstripe; tracks with sentinels and LRC,
                                     either may be empty (never both)
    CD|C|<hex>                       card read by chip: EMV BER-TLV, hex-encoded
    CD|L|<hex>                       card read contactless: EMV BER-TLV, hex-encoded
    ER|<code>                        the command or the transaction failed

Error codes: CARD_REMOVED (pulled out during a chip read), TIMEOUT (the reader's own wait for a
card expired), CANCELLED (CN received or cancel key), CARD_UNREADABLE (swipe/chip error, ask
again), BUSY (ST while armed), BAD_REQUEST (unknown or malformed command).

Exchange: every command gets exactly one immediate response (ID, OK, SS or ER). After
`OK|ST` the transaction ends with exactly one CD or ER, sent when the card is read (or the
reader gives up, or CN arrives). A CN that crosses a CD on the wire is answered `OK|CN` and
the CD stands; the host then discards the card read (the cashier cancelled) and reports
CANCELLED. Every frame, in both directions, is ACKed or NAKed by the link layer first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from drivers.card.carddata import EntryMode
from drivers.errors import ProtocolError
from drivers.sensitive import SecretStr

SEPARATOR = "|"
ENCODING = "ascii"
MAX_AMOUNT_DIGITS = 12
CURRENCY_LETTERS = 3


class Verb(StrEnum):
    IDENTIFY = "ID"
    START = "ST"
    CANCEL = "CN"
    STATUS = "SS"
    OK = "OK"
    CARD = "CD"
    ERROR = "ER"


class ReaderState(StrEnum):
    IDLE = "IDLE"
    ARMED = "ARMED"


class ErrorCode(StrEnum):
    CARD_REMOVED = "CARD_REMOVED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    CARD_UNREADABLE = "CARD_UNREADABLE"
    BUSY = "BUSY"
    BAD_REQUEST = "BAD_REQUEST"


_ENTRY_CODES = {
    EntryMode.MAGSTRIPE: "M",
    EntryMode.CHIP: "C",
    EntryMode.CONTACTLESS: "L",
}
_ENTRY_BY_CODE = {code: mode for mode, code in _ENTRY_CODES.items()}


def _join(*fields: str) -> bytes:
    for field in fields:
        if SEPARATOR in field:
            raise ValueError("protocol fields cannot contain '|'")
    return SEPARATOR.join(fields).encode(ENCODING)


def _split(payload: bytes) -> list[str]:
    try:
        return payload.decode(ENCODING).split(SEPARATOR)
    except UnicodeDecodeError:
        raise ProtocolError("message is not ASCII") from None


# -- commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identify:
    def encode(self) -> bytes:
        return _join(Verb.IDENTIFY)


@dataclass(frozen=True)
class StartTransaction:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not 0 < self.amount_minor < 10**MAX_AMOUNT_DIGITS:
            raise ValueError(f"amount must be 1-{MAX_AMOUNT_DIGITS} digits of minor units")
        if not (
            len(self.currency) == CURRENCY_LETTERS
            and self.currency.isascii()
            and self.currency.isalpha()
            and self.currency.isupper()
        ):
            raise ValueError("currency must be an ISO 4217 code like 'USD'")

    def encode(self) -> bytes:
        return _join(Verb.START, str(self.amount_minor), self.currency)


@dataclass(frozen=True)
class Cancel:
    def encode(self) -> bytes:
        return _join(Verb.CANCEL)


@dataclass(frozen=True)
class Status:
    def encode(self) -> bytes:
        return _join(Verb.STATUS)


Command = Identify | StartTransaction | Cancel | Status


def decode_command(payload: bytes) -> Command:
    """Parse a host command (the device side uses this). Raises `ProtocolError`."""
    fields = _split(payload)
    verb, args = fields[0], fields[1:]
    if verb == Verb.START and len(args) == 2 and args[0].isdigit():
        try:
            return StartTransaction(int(args[0]), args[1])
        except ValueError as error:
            raise ProtocolError(f"bad ST command: {error}") from None
    simple: dict[str, Command] = {
        Verb.IDENTIFY: Identify(),
        Verb.CANCEL: Cancel(),
        Verb.STATUS: Status(),
    }
    if verb in simple and not args:
        return simple[verb]
    raise ProtocolError(f"unknown or malformed command {verb[:2]!r}")


# -- responses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentifyResponse:
    model: str
    firmware: str
    serial_number: str

    def encode(self) -> bytes:
        return _join(Verb.IDENTIFY, self.model, self.firmware, self.serial_number)


@dataclass(frozen=True)
class Accepted:
    command: Verb

    def encode(self) -> bytes:
        return _join(Verb.OK, self.command)


@dataclass(frozen=True)
class StatusResponse:
    state: ReaderState

    def encode(self) -> bytes:
        return _join(Verb.STATUS, self.state)


@dataclass(frozen=True)
class MagstripeData:
    track1: SecretStr
    track2: SecretStr

    def encode(self) -> bytes:
        return _join(
            Verb.CARD, _ENTRY_CODES[EntryMode.MAGSTRIPE], self.track1.reveal(), self.track2.reveal()
        )


@dataclass(frozen=True)
class EmvData:
    entry_mode: EntryMode
    tlv_hex: SecretStr

    def encode(self) -> bytes:
        return _join(Verb.CARD, _ENTRY_CODES[self.entry_mode], self.tlv_hex.reveal())


@dataclass(frozen=True)
class ErrorResponse:
    code: ErrorCode

    def encode(self) -> bytes:
        return _join(Verb.ERROR, self.code)


Response = IdentifyResponse | Accepted | StatusResponse | MagstripeData | EmvData | ErrorResponse


def _decode_card(args: list[str]) -> Response:
    mode = _ENTRY_BY_CODE.get(args[0]) if args else None
    if mode is EntryMode.MAGSTRIPE and len(args) == 3 and (args[1] or args[2]):
        return MagstripeData(SecretStr(args[1]), SecretStr(args[2]))
    if mode in (EntryMode.CHIP, EntryMode.CONTACTLESS) and len(args) == 2 and args[1]:
        return EmvData(mode, SecretStr(args[1]))
    raise ProtocolError("malformed CD message")


def decode_response(payload: bytes) -> Response:
    """Parse a reader response. Raises `ProtocolError` (its message never quotes card data)."""
    fields = _split(payload)
    verb, args = fields[0], fields[1:]
    try:
        if verb == Verb.CARD:
            return _decode_card(args)
        if verb == Verb.IDENTIFY and len(args) == 3:
            return IdentifyResponse(*args)
        if verb == Verb.OK and len(args) == 1:
            return Accepted(Verb(args[0]))
        if verb == Verb.STATUS and len(args) == 1:
            return StatusResponse(ReaderState(args[0]))
        if verb == Verb.ERROR and len(args) == 1:
            return ErrorResponse(ErrorCode(args[0]))
    except ValueError:
        pass
    raise ProtocolError(f"unknown or malformed response {verb[:2]!r}")
