"""The P2PE block: what a secure reader's encrypted read becomes inside a sealed record.

In P2PE mode (`[payments] card_data = "p2pe"`) the terminal never holds a clear card number:
the reader encrypts the tracks in its head under a DUKPT key and hands the host masked tracks,
the encrypted block(s), the key serial number (KSN) and its own serial. The terminal puts the
encrypted part into the record's secret JSON (still sealed under the KMS envelope) as the
object below, under the key `P2PE_FIELD`; the cloud sends `tracks[*].ciphertext` with `ksn`,
`scheme` and `key_ref` to AWS Payment Cryptography, the only place that can decrypt it.

    {"p2pe": {"schema": "posd.p2pe/1", "scheme": "tdes-2key", "ksn": "FFFF9876543210E00001",
              "key_ref": "alias/posd-bdk", "device_serial": "B123...", "format": "...",
              "tracks": [{"track": 2, "ciphertext": "<base64>", "length": 37}]}}

`length` is the clear track's length in bytes (the ciphertext is padded to the cipher's
block). Standard library only: both sides read this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from wire.errors import MalformedMessage
from wire.events import b64decode_strict, b64encode

P2PE_FIELD = "p2pe"
P2PE_SCHEMA = "posd.p2pe/1"
TRACK_NUMBERS = (1, 2, 3)
MAX_TRACK_CIPHERTEXT_BYTES = 512


class DukptScheme(StrEnum):
    """The DUKPT variants a secure reader may use (ANSI X9.24-1 TDES, X9.24-3 AES)."""

    TDES_2KEY = "tdes-2key"
    AES_128 = "aes-128"

    @property
    def ksn_bytes(self) -> int:
        """TDES KSNs are 80 bits; AES KSNs are 96 (32-bit BDK id, 32-bit derivation id,
        32-bit counter)."""
        return 10 if self is DukptScheme.TDES_2KEY else 12

    @property
    def block_bytes(self) -> int:
        return 8 if self is DukptScheme.TDES_2KEY else 16


@dataclass(frozen=True)
class EncryptedTrack:
    """One track as the reader encrypted it: ciphertext, and the clear track's length."""

    track: int
    ciphertext: bytes
    length: int

    def __post_init__(self) -> None:
        if self.track not in TRACK_NUMBERS:
            raise MalformedMessage(f"p2pe track must be one of {TRACK_NUMBERS}")
        if not 0 < len(self.ciphertext) <= MAX_TRACK_CIPHERTEXT_BYTES:
            raise MalformedMessage(
                f"p2pe track ciphertext must be 1-{MAX_TRACK_CIPHERTEXT_BYTES} bytes"
            )
        if not 0 < self.length <= len(self.ciphertext):
            raise MalformedMessage("p2pe track length must be 1 to the ciphertext's length")


@dataclass(frozen=True)
class P2peBlock:
    """The encrypted part of one card read, as journaled and sent (never a clear PAN)."""

    scheme: DukptScheme
    ksn: bytes
    key_ref: str
    device_serial: str
    format: str
    tracks: tuple[EncryptedTrack, ...]

    def __post_init__(self) -> None:
        if len(self.ksn) != self.scheme.ksn_bytes:
            raise MalformedMessage(
                f"p2pe ksn must be {self.scheme.ksn_bytes} bytes for {self.scheme.value}"
            )
        if not self.tracks:
            raise MalformedMessage("p2pe block holds no encrypted track")
        if not self.key_ref:
            raise MalformedMessage("p2pe block names no key (key_ref)")
        for track in self.tracks:
            if len(track.ciphertext) % self.scheme.block_bytes:
                raise MalformedMessage(
                    f"p2pe track {track.track} is not whole {self.scheme.block_bytes}-byte blocks"
                )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": P2PE_SCHEMA,
            "scheme": self.scheme.value,
            "ksn": self.ksn.hex().upper(),
            "key_ref": self.key_ref,
            "device_serial": self.device_serial,
            "format": self.format,
            "tracks": [
                {"track": t.track, "ciphertext": b64encode(t.ciphertext), "length": t.length}
                for t in self.tracks
            ],
        }

    @classmethod
    def from_json(cls, value: Any) -> P2peBlock:
        """`MalformedMessage` naming the field for anything that is not a valid block."""
        if not isinstance(value, dict) or value.get("schema") != P2PE_SCHEMA:
            raise MalformedMessage(f"p2pe block is not {P2PE_SCHEMA}")
        try:
            scheme = DukptScheme(str(value.get("scheme")))
        except ValueError:
            raise MalformedMessage("p2pe scheme is not one of " + ", ".join(DukptScheme)) from None
        ksn_text = value.get("ksn")
        try:
            ksn = bytes.fromhex(ksn_text) if isinstance(ksn_text, str) else b""
        except ValueError:
            ksn = b""
        tracks_in = value.get("tracks")
        if not isinstance(tracks_in, list):
            raise MalformedMessage("p2pe tracks must be a list")
        tracks = []
        for item in tracks_in:
            if not isinstance(item, dict):
                raise MalformedMessage("p2pe track must be an object")
            number, length = item.get("track"), item.get("length")
            if type(number) is not int or type(length) is not int:
                raise MalformedMessage("p2pe track and length must be integers")
            ciphertext = b64decode_strict(
                item.get("ciphertext"), "p2pe ciphertext", MalformedMessage
            )
            tracks.append(EncryptedTrack(number, ciphertext, length))
        key_ref, device_serial, format_name = (
            _string(value, name) for name in ("key_ref", "device_serial", "format")
        )
        return cls(scheme, ksn, key_ref, device_serial, format_name, tuple(tracks))

    def dumps(self) -> str:
        """Compact JSON, keys sorted (what goes into the record's secret)."""
        return json.dumps(self.to_json(), sort_keys=True)


def _string(value: dict[str, Any], name: str) -> str:
    text = value.get(name)
    if not isinstance(text, str):
        raise MalformedMessage(f"p2pe {name} must be a string")
    return text
