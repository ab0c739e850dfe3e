"""`posd decode track|tlv|secure`: the parser only; the work is in `posd.cli.decoding`."""

from __future__ import annotations

import argparse

from posd.cli.args import add_json_argument, lazy

IMPL = "posd.cli.decoding"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "decode", help="parse magstripe tracks, EMV TLV or a secure swipe (PAN masked)"
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    track = kinds.add_parser("track", help="ISO/IEC 7813 track 1 and/or 2 text")
    track.add_argument("data", metavar="STRING", help="e.g. '%%B...^NAME^YYMM...?' or ';...=...?'")
    add_json_argument(track)
    track.set_defaults(handler=lazy(IMPL, "decode_track"))
    tlv_parser = kinds.add_parser("tlv", help="EMV BER-TLV as hex")
    tlv_parser.add_argument("data", metavar="HEX", help="hex digits; spaces and colons ignored")
    add_json_argument(tlv_parser)
    tlv_parser.set_defaults(handler=lazy(IMPL, "decode_tlv"))
    secure = kinds.add_parser(
        "secure", help="a secure (encrypting) reader's swipe as hex: masked fields, KSN"
    )
    secure.add_argument(
        "data", metavar="HEX", help="the swipe's bytes (ID TECH enhanced format) as hex"
    )
    add_json_argument(secure)
    secure.set_defaults(handler=lazy(IMPL, "decode_secure"))
