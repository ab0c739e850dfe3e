"""EMV data objects: names of the common tags, which are sensitive, and the card they describe.

`card_from_tlv` turns a chip or contactless read (a BER-TLV blob) into `CardData`: PAN from 5A
or from the track 2 equivalent (57), expiry from 5F24 or 57, service code from 57, name from
5F20; disagreements between 5A and 57 are problems. `describe_value` renders a value for the
technician without ever showing sensitive tags in clear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drivers.card import tlv
from drivers.card.carddata import CardData, EntryMode, Expiry, Pan, ServiceCode
from drivers.errors import CardConsistencyError, CardDataError, TlvError
from drivers.sensitive import SecretBytes, SecretStr

TAG_PAN = 0x5A
TAG_TRACK2_EQUIVALENT = 0x57
TAG_TRACK1_EQUIVALENT = 0x56
TAG_CARDHOLDER_NAME = 0x5F20
TAG_EXPIRY = 0x5F24
TAG_AMOUNT_AUTHORISED = 0x9F02
TAG_APPLICATION_CRYPTOGRAM = 0x9F26
TAG_ATC = 0x9F36
TRACK2_EQ_SEPARATOR = "D"
TRACK2_EQ_PADDING = "F"
EXPIRY_YYMMDD_BYTES = 3


@dataclass(frozen=True)
class TagInfo:
    name: str
    sensitive: bool = False


TAGS: dict[int, TagInfo] = {
    0x4F: TagInfo("Application Identifier (AID)"),
    0x50: TagInfo("Application Label"),
    TAG_TRACK1_EQUIVALENT: TagInfo("Track 1 Equivalent Data", sensitive=True),
    TAG_TRACK2_EQUIVALENT: TagInfo("Track 2 Equivalent Data", sensitive=True),
    TAG_PAN: TagInfo("Application PAN", sensitive=True),
    0x6F: TagInfo("FCI Template"),
    0x70: TagInfo("Record Template"),
    0x77: TagInfo("Response Message Template Format 2"),
    0x82: TagInfo("Application Interchange Profile"),
    0x84: TagInfo("Dedicated File Name"),
    0x95: TagInfo("Terminal Verification Results"),
    0x99: TagInfo("Transaction PIN Data", sensitive=True),
    0x9A: TagInfo("Transaction Date"),
    0x9C: TagInfo("Transaction Type"),
    0xA5: TagInfo("FCI Proprietary Template"),
    TAG_CARDHOLDER_NAME: TagInfo("Cardholder Name", sensitive=True),
    TAG_EXPIRY: TagInfo("Application Expiration Date"),
    0x5F25: TagInfo("Application Effective Date"),
    0x5F28: TagInfo("Issuer Country Code"),
    0x5F2A: TagInfo("Transaction Currency Code"),
    0x5F34: TagInfo("PAN Sequence Number"),
    TAG_AMOUNT_AUTHORISED: TagInfo("Amount, Authorised"),
    0x9F03: TagInfo("Amount, Other"),
    0x9F10: TagInfo("Issuer Application Data"),
    0x9F1A: TagInfo("Terminal Country Code"),
    0x9F1F: TagInfo("Track 1 Discretionary Data", sensitive=True),
    0x9F20: TagInfo("Track 2 Discretionary Data", sensitive=True),
    TAG_APPLICATION_CRYPTOGRAM: TagInfo("Application Cryptogram"),
    0x9F27: TagInfo("Cryptogram Information Data"),
    0x9F33: TagInfo("Terminal Capabilities"),
    0x9F34: TagInfo("CVM Results"),
    0x9F35: TagInfo("Terminal Type"),
    TAG_ATC: TagInfo("Application Transaction Counter"),
    0x9F37: TagInfo("Unpredictable Number"),
    0x9F6B: TagInfo("Track 2 Data (contactless)", sensitive=True),
}
UNKNOWN_TAG = TagInfo("(unknown tag)")


def tag_info(tag: int) -> TagInfo:
    return TAGS.get(tag, UNKNOWN_TAG)


def _nibbles(value: bytes) -> str:
    return value.hex().upper()


def _pan_from_digits(digits: str, tag: int) -> Pan:
    try:
        return Pan(digits)
    except CardDataError as error:
        raise TlvError(0, f"tag {tlv.tag_hex(tag)}: {error}") from None


def _pan_from_bcd(value: bytes, tag: int) -> Pan:
    return _pan_from_digits(_nibbles(value).rstrip(TRACK2_EQ_PADDING), tag)


@dataclass(frozen=True, repr=False)
class Track2Equivalent:
    pan: Pan
    expiry: Expiry
    service_code: ServiceCode


def parse_track2_equivalent(value: bytes) -> Track2Equivalent:
    """Tag 57: PAN 'D' YYMM service-code discretionary, padded with 'F' to whole bytes."""
    text = _nibbles(value).rstrip(TRACK2_EQ_PADDING)
    pan_text, sep, rest = text.partition(TRACK2_EQ_SEPARATOR)
    where = f"tag {tlv.tag_hex(TAG_TRACK2_EQUIVALENT)}"
    if not sep:
        raise TlvError(0, f"{where}: no 'D' field separator")
    try:
        return Track2Equivalent(
            _pan_from_digits(pan_text, TAG_TRACK2_EQUIVALENT),
            Expiry.parse_yymm(rest[:4]),
            ServiceCode(rest[4:7]),
        )
    except CardDataError as error:
        raise TlvError(0, f"{where}: {error}") from None


def build_track2_equivalent(
    pan: str, expiry_yymm: str, service_code: str, discretionary: str = ""
) -> bytes:
    text = f"{pan}{TRACK2_EQ_SEPARATOR}{expiry_yymm}{service_code}{discretionary}"
    return bytes.fromhex(text + TRACK2_EQ_PADDING * (len(text) % 2))


def build_pan_bcd(pan: str) -> bytes:
    return bytes.fromhex(pan + TRACK2_EQ_PADDING * (len(pan) % 2))


def _expiry_yymmdd(value: bytes) -> Expiry:
    if len(value) != EXPIRY_YYMMDD_BYTES:
        raise TlvError(0, f"tag {tlv.tag_hex(TAG_EXPIRY)}: expected 3 bytes YYMMDD")
    try:
        return Expiry.parse_yymm(_nibbles(value)[:4])
    except CardDataError as error:
        raise TlvError(0, f"tag {tlv.tag_hex(TAG_EXPIRY)}: {error}") from None


def card_from_tlv(
    data: bytes, entry_mode: EntryMode = EntryMode.CHIP, objects: Sequence[tlv.Tlv] | None = None
) -> CardData:
    """Build `CardData` from an EMV read. Raises `TlvError` if no PAN can be found."""
    objs = tuple(objects) if objects is not None else tlv.parse(data)
    pan_obj = tlv.find(objs, TAG_PAN)
    t2_obj = tlv.find(objs, TAG_TRACK2_EQUIVALENT)
    exp_obj = tlv.find(objs, TAG_EXPIRY)
    name_obj = tlv.find(objs, TAG_CARDHOLDER_NAME)
    pan = _pan_from_bcd(pan_obj.value, TAG_PAN) if pan_obj else None
    track2 = parse_track2_equivalent(t2_obj.value) if t2_obj else None
    expiry = _expiry_yymmdd(exp_obj.value) if exp_obj else None
    problems: list[CardDataError] = []
    if track2 is not None:
        if pan is not None and pan != track2.pan:
            problems.append(CardConsistencyError("tags 5A and 57 card numbers differ"))
        if expiry is not None and expiry != track2.expiry:
            problems.append(CardConsistencyError("tags 5F24 and 57 expiry dates differ"))
    chosen = pan or (track2.pan if track2 else None)
    if chosen is None:
        raise TlvError(0, "no card number (tag 5A or 57) in the data")
    problems[:0] = chosen.problems()
    name = name_obj.value.decode("ascii", "replace").strip() if name_obj else None
    return CardData(
        entry_mode=entry_mode,
        pan=chosen,
        expiry=expiry or (track2.expiry if track2 else None),
        service_code=track2.service_code if track2 else None,
        cardholder_name=SecretStr(name) if name else None,
        tlv=SecretBytes(bytes(data)),
        problems=tuple(problems),
    )


def describe_value(obj: tlv.Tlv) -> str:
    """A technician-safe rendering: masked PAN, hidden sensitive tags, hex otherwise."""
    if obj.constructed:
        return f"template, {len(obj.children)} objects"
    info = tag_info(obj.tag)
    if obj.tag == TAG_PAN:
        try:
            return _pan_from_bcd(obj.value, TAG_PAN).masked
        except TlvError:
            return f"<malformed, {len(obj.value)} bytes>"
    if obj.tag == TAG_TRACK2_EQUIVALENT:
        try:
            t2 = parse_track2_equivalent(obj.value)
        except TlvError:
            return f"<malformed, {len(obj.value)} bytes>"
        return f"{t2.pan.masked} exp {t2.expiry} svc {t2.service_code.code} (rest hidden)"
    if info.sensitive:
        return f"<hidden, {len(obj.value)} bytes>"
    return obj.value.hex().upper()
