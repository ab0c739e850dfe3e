"""EMV card data: the card a chip or contactless read describes, and safe value rendering.

`card_from_tlv` turns a chip or contactless read (a BER-TLV blob) into `CardData`: PAN from 5A
or from the track 2 equivalent (57), expiry from 5F24 or 57, service code from 57, name from
5F20; disagreements between 5A and 57, and malformed fields of 57 (ISO/IEC 7813 layout, see
`iso7813`), are problems. `describe_value` renders a value for the technician without ever
showing a tag the dictionary (`emv_tags`) marks sensitive in clear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drivers.card import tlv
from drivers.card.carddata import CardData, EntryMode, Expiry, Pan, ServiceCode
from drivers.card.emv_tags import UNKNOWN_TAG, TagInfo, tag_dictionary, tag_info
from drivers.card.iso7813 import format_fields, needs_country_code, parse_fields
from drivers.errors import CardConsistencyError, CardDataError, TlvError
from drivers.sensitive import SecretBytes, SecretStr

__all__ = [
    "UNKNOWN_TAG",
    "TagInfo",
    "Track2Equivalent",
    "build_pan_bcd",
    "build_track2_equivalent",
    "card_from_tlv",
    "describe_value",
    "parse_track2_equivalent",
    "tag_dictionary",
    "tag_info",
]

TAG_PAN = 0x5A
TAG_TRACK2_EQUIVALENT = 0x57
TAG_TRACK1_EQUIVALENT = 0x56
TAG_CARDHOLDER_NAME = 0x5F20
TAG_EXPIRY = 0x5F24
TAG_AMOUNT_AUTHORISED = 0x9F02
TAG_APPLICATION_CRYPTOGRAM = 0x9F26
TAG_ATC = 0x9F36
TAG_TRACK2_DATA = 0x9F6B  # Kernel 2's contactless track 2: the layout of tag 57
TRACK2_LAYOUT_TAGS = frozenset({TAG_TRACK2_EQUIVALENT, TAG_TRACK2_DATA})
TRACK2_EQ_SEPARATOR = "D"
TRACK2_EQ_PADDING = "F"
EXPIRY_YYMMDD_BYTES = 3


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
    """Tag 57 (or 9F6B): the PAN, and whatever fields parsed; the others are in `problems`."""

    pan: Pan
    expiry: Expiry | None
    service_code: ServiceCode | None
    country_code: str | None = None
    problems: tuple[CardDataError, ...] = ()


def parse_track2_equivalent(value: bytes, tag: int = TAG_TRACK2_EQUIVALENT) -> Track2Equivalent:
    """PAN 'D' [country code] YYMM service-code discretionary, padded with 'F' to whole bytes.

    Raises `TlvError` only when there is no usable PAN (no separator, bad digits); a malformed
    or absent expiry or service code is a problem of the result.
    """
    text = _nibbles(value).rstrip(TRACK2_EQ_PADDING)
    pan_text, sep, rest = text.partition(TRACK2_EQ_SEPARATOR)
    where = f"tag {tlv.tag_hex(tag)}"
    if not sep:
        raise TlvError(0, f"{where}: no 'D' field separator")
    pan = _pan_from_digits(pan_text, tag)
    fields = parse_fields(rest, TRACK2_EQ_SEPARATOR, needs_country_code(pan_text), where)
    return Track2Equivalent(
        pan, fields.expiry, fields.service_code, fields.country_code, fields.problems
    )


def build_track2_equivalent(
    pan: str,
    expiry_yymm: str | None,
    service_code: str | None,
    discretionary: str = "",
    *,
    country_code: str | None = None,
) -> bytes:
    """Tag 57's value (None for a field writes the separator that marks it absent)."""
    fields = format_fields(
        TRACK2_EQ_SEPARATOR, expiry_yymm, service_code, discretionary, country_code
    )
    text = f"{pan}{TRACK2_EQ_SEPARATOR}{fields}"
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


def _track2_or_problem(
    obj: tlv.Tlv | None, have_pan: bool, problems: list[CardDataError]
) -> Track2Equivalent | None:
    """Parse 57; if it has no usable PAN, that is a problem when 5A has one, else an error."""
    if obj is None:
        return None
    try:
        return parse_track2_equivalent(obj.value)
    except TlvError as error:
        if not have_pan:
            raise
        problems.append(error)
        return None


def card_from_tlv(
    data: bytes, entry_mode: EntryMode = EntryMode.CHIP, objects: Sequence[tlv.Tlv] | None = None
) -> CardData:
    """Build `CardData` from an EMV read. Raises `TlvError` if no PAN can be found."""
    objs = tuple(objects) if objects is not None else tlv.parse(data)
    pan_obj = tlv.find(objs, TAG_PAN)
    exp_obj = tlv.find(objs, TAG_EXPIRY)
    name_obj = tlv.find(objs, TAG_CARDHOLDER_NAME)
    pan = _pan_from_bcd(pan_obj.value, TAG_PAN) if pan_obj else None
    expiry = _expiry_yymmdd(exp_obj.value) if exp_obj else None
    problems: list[CardDataError] = []
    track2 = _track2_or_problem(tlv.find(objs, TAG_TRACK2_EQUIVALENT), pan is not None, problems)
    if track2 is not None:
        problems.extend(track2.problems)
        if pan is not None and pan != track2.pan:
            problems.append(CardConsistencyError("tags 5A and 57 card numbers differ"))
        if expiry is not None and track2.expiry is not None and expiry != track2.expiry:
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
        country_code=track2.country_code if track2 else None,
        tlv=SecretBytes(bytes(data)),
        problems=tuple(problems),
    )


def _describe_track2(obj: tlv.Tlv) -> str:
    try:
        t2 = parse_track2_equivalent(obj.value, obj.tag)
    except TlvError:
        return f"<malformed, {len(obj.value)} bytes>"
    expiry = str(t2.expiry) if t2.expiry else "-"
    service = t2.service_code.code if t2.service_code else "-"
    country = f" country {t2.country_code}" if t2.country_code else ""
    return f"{t2.pan.masked} exp {expiry} svc {service}{country} (rest hidden)"


def describe_value(obj: tlv.Tlv) -> str:
    """A technician-safe rendering: masked PAN, hidden sensitive tags, hex otherwise."""
    if obj.constructed:
        return f"template, {len(obj.children)} objects"
    if obj.tag == TAG_PAN:
        try:
            return _pan_from_bcd(obj.value, TAG_PAN).masked
        except TlvError:
            return f"<malformed, {len(obj.value)} bytes>"
    if obj.tag in TRACK2_LAYOUT_TAGS:
        return _describe_track2(obj)
    if tag_info(obj.tag).sensitive:
        return f"<hidden, {len(obj.value)} bytes>"
    return obj.value.hex().upper()
