"""`posd decode track|tlv|secure`: parse card data a technician pastes, never showing a full
PAN.

Exit codes: 0 the data parses and every check passes; 1 it parses but has problems (Luhn, LRC,
brand length, absent or malformed fields, disagreeing fields: all listed, and the TLV tree is
still shown; a secure swipe the reader could not decode); 2 it cannot be parsed at all (a
one-line message, no traceback). Track 3 is checked and counted, never shown. A secure
(P2PE) reader's swipe shows what the terminal itself may see of it (`posd.reader_encryption`):
masked fields, KSN, scheme, format and each encrypted track's clear length.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from drivers.card import emv, tlv
from drivers.card.carddata import CardData
from drivers.card.secure_formats import parse_enhanced
from drivers.card.tracks import (
    TRACK1,
    Track,
    Track3,
    card_from_tracks,
    parse_track1,
    parse_track2,
    parse_track3,
    split_swipe,
)
from drivers.errors import CardDataError, ProtocolError
from posd.cli.output import emit, key_values, table
from posd.errors import UsageError
from posd.reader_encryption import encrypted_fields

EXIT_OK = 0
EXIT_PROBLEMS = 1
TRACK3_NUMBER = 3
NO_TRACK_DECODED = "no_track_decoded"
NAME_MASK = "*"
_NOT_INITIAL = re.compile(r"\B\w")  # every word character except the first of each word


def _mask_name(name: str) -> str:
    """Initials only: 'DOE/JOHN' -> 'D**/J***' (enough to tell two test cards apart)."""
    return _NOT_INITIAL.sub(NAME_MASK, name)


def _card_summary(card: CardData) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    summary: dict[str, Any] = {
        "entry_mode": card.entry_mode.value,
        "masked_pan": card.pan.masked,
        "pan_length": card.pan.length,
        "brand": card.brand.value,
        "co_badged": [brand.value for brand in card.pan.co_badged],
        "luhn_valid": card.pan.luhn_ok,
        "luhn_required": card.pan.luhn_required,
        "expiry": str(card.expiry) if card.expiry else None,
        "expired": card.expiry.expired(today) if card.expiry else None,
        "service_code": card.service_code.code if card.service_code else None,
        "service": card.service_code.describe() if card.service_code else None,
        "country_code": card.country_code,
        "cardholder_name": (
            _mask_name(card.cardholder_name.reveal()) if card.cardholder_name else None
        ),
    }
    return summary


def _problems(problems: Sequence[CardDataError]) -> list[dict[str, str]]:
    return [{"code": p.code, "message": str(p)} for p in problems]


def _lrc(track: Track | Track3) -> str:
    return ("ok" if track.lrc_ok else "mismatch") if track.lrc_present else "absent"


def _track_info(track: Track) -> dict[str, Any]:
    return {
        "track": 1 if track.encoding is TRACK1 else 2,
        "lrc": _lrc(track),
        "discretionary_length": len(track.discretionary),
    }


def _track3_info(track: Track3) -> dict[str, Any]:
    """Track 3 is not parsed: its whole content counts as discretionary."""
    return {"track": TRACK3_NUMBER, "lrc": _lrc(track), "discretionary_length": track.data_chars}


def decode_track(args: argparse.Namespace) -> int:
    try:
        text1, text2, text3 = split_swipe(args.data)
        track1 = parse_track1(text1) if text1 else None
        track2 = parse_track2(text2) if text2 else None
        track3 = parse_track3(text3) if text3 else None
        card = card_from_tracks(track1, track2, track3)
    except CardDataError as error:
        raise UsageError(f"cannot parse track data: {error}") from None
    tracks = [_track_info(t) for t in (track1, track2) if t is not None]
    if track3 is not None:
        tracks.append(_track3_info(track3))
    result = {"kind": "track", **_card_summary(card), "tracks": tracks}
    result["problems"] = _problems(card.problems)
    result["valid"] = card.valid
    emit(result, args.json, _render)
    return EXIT_OK if card.valid else EXIT_PROBLEMS


def decode_tlv(args: argparse.Namespace) -> int:
    if not args.data.strip(" :"):
        raise UsageError("cannot parse TLV: no data given")
    try:
        objects = tlv.parse_hex(args.data)
    except CardDataError as error:
        raise UsageError(f"cannot parse TLV: {error}") from None
    card: CardData | None = None
    problems: Sequence[CardDataError] = ()
    if any(tlv.find(objects, tag) for tag in (emv.TAG_PAN, emv.TAG_TRACK2_EQUIVALENT)):
        try:
            card = emv.card_from_tlv(tlv.encode(objects), objects=objects)
            problems = card.problems
        except CardDataError as error:  # the tree parsed, the card in it did not: show both
            problems = (error,)
    rows = [
        {
            "depth": depth,
            "tag": tlv.tag_hex(obj.tag),
            "name": emv.tag_info(obj.tag).name,
            "length": len(tlv.encode(obj.children)) if obj.constructed else len(obj.value),
            "value": emv.describe_value(obj),
        }
        for depth, obj in tlv.walk(objects)
    ]
    result: dict[str, Any] = {"kind": "tlv", "objects": rows}
    if card is not None:
        result.update({k: v for k, v in _card_summary(card).items() if k != "entry_mode"})
    result["problems"] = _problems(problems)
    result["valid"] = not problems
    emit(result, args.json, _render)
    return EXIT_OK if result["valid"] else EXIT_PROBLEMS


def decode_secure(args: argparse.Namespace) -> int:
    text = "".join(args.data.split())
    if not text:
        raise UsageError("cannot parse a secure swipe: no data given")
    try:
        swipe = bytes.fromhex(text)
    except ValueError:
        raise UsageError("cannot parse a secure swipe: not hex digits") from None
    try:
        card = parse_enhanced(swipe)
    except (ProtocolError, CardDataError) as error:
        raise UsageError(f"cannot parse a secure swipe: {error}") from None
    if card is None:
        problem = {"code": NO_TRACK_DECODED, "message": "the reader could not read the card"}
        result: dict[str, Any] = {"kind": "secure", "problems": [problem], "valid": False}
    else:
        fields = encrypted_fields(card)
        result = {"kind": "secure", **fields, "problems": [], "valid": True}
    emit(result, args.json, _render)
    return EXIT_OK if result["valid"] else EXIT_PROBLEMS


def _render(result: Mapping[str, Any]) -> str:
    nested = {"objects", "tracks", "problems", "encrypted_tracks"}
    summary = {
        k: ", ".join(v) if isinstance(v, list) else v
        for k, v in result.items()
        if k not in nested and v not in (None, [])
    }
    parts = [key_values(summary)]
    if result.get("tracks"):
        parts.append(
            table(
                [(t["track"], t["lrc"], t["discretionary_length"]) for t in result["tracks"]],
                ["track", "lrc", "discretionary chars"],
            )
        )
    if result.get("encrypted_tracks"):
        parts.append(
            table(
                [(t["track"], t["length"]) for t in result["encrypted_tracks"]],
                ["encrypted track", "clear length (bytes)"],
            )
        )
    if result.get("objects"):
        rows = [
            ("  " * o["depth"] + o["tag"], o["name"], o["length"], o["value"])
            for o in result["objects"]
        ]
        parts.append(table(rows, ["tag", "name", "len", "value"]))
    problems = result.get("problems") or []
    parts.append(
        "problems:\n" + "\n".join(f"  - {p['code']}: {p['message']}" for p in problems)
        if problems
        else "problems: none"
    )
    return "\n\n".join(parts)
