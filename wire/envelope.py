"""Per-record envelope encryption and the hash chain.

A record's sensitive payload is sealed with AES-256-GCM under a data key. The associated data
(AAD) is the canonical JSON of the record's identity and clear metadata, so changing any clear
field, or swapping ciphertexts between records, makes decryption fail. The AAD also carries the
SHA-256 of the wrapped data key, so the chain covers the key a record claims to use.

Canonical JSON: UTF-8, keys sorted, no whitespace (`separators=(",", ":")`), ASCII escapes.
The chain links records: chain[n] = SHA-256(chain[n-1] || SHA-256(aad[n]) || nonce[n] ||
ciphertext[n]), starting from 32 zero bytes (or the anchor kept when old records are purged).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from _json import encode_basestring_ascii, make_encoder
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wire.errors import EnvelopeError
from wire.templates import JsonTemplate, encode_string_ascii, hole

ALGORITHM = "AES-256-GCM"
AAD_SCHEMA = "posd.record.v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
CHAIN_BYTES = 32
GENESIS_CHAIN = bytes(CHAIN_BYTES)
# The fields of a record's identity that are both sealed in its AAD and in clear in its
# event's Detail: a reader compares them (`wire.opening.sealed_identity`).
SEALED_IDENTITY_FIELDS = (
    "seq",
    "event_id",
    "kind",
    "captured_at",
    "client_ref",
    "store_id",
    "terminal_id",
    "meta",
)

MetaValue = str | int | bool | None


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
# `_CANONICAL`'s own C encoder, made once, without its check for cycles: for flat mappings
# of scalars only, where there is no cycle to look for. `"".join(FLAT_ENCODER(value, 0))` is
# `flat_canonical_text(value)` without a Python call (the append's metadata check).
FLAT_ENCODER = make_encoder(
    None, _CANONICAL.default, encode_basestring_ascii, None, ":", ",", True, False, True
)


def canonical_ascii_json(value: Any) -> bytes:
    """The AAD's encoding: sorted keys, no whitespace, non-ASCII as \\u escapes (pure ASCII).

    Differs on purpose from the event Detail's `wire.events.detail_json` (UTF-8 text): these
    bytes are hashed into the chain and must never change with a JSON library's defaults."""
    return _CANONICAL.encode(value).encode()


def flat_canonical_text(value: Mapping[str, MetaValue]) -> str:
    """`canonical_ascii_json(value)` as text, for a mapping of str keys to str, int, bool or
    None (a record's checked metadata: on every payment's path). The encoder `json` would
    make anew for each call, made once; the same bytes (property-tested)."""
    return "".join(FLAT_ENCODER(value, 0))


# Key sets of metadata whose form is kept (one shape per kind of record, mostly). A form is
# about the size of its keys' text: under the capture API's 16 KiB body, six times that once
# escaped at worst, so the cache stays under 2 MiB whatever a client sends.
FLAT_FORMS_CACHED = 16


def _no_values(texts: Mapping[str, str]) -> tuple[()]:
    return ()


@functools.lru_cache(maxsize=FLAT_FORMS_CACHED)
def flat_form(keys: tuple[str, ...]) -> tuple[str, Callable[[Mapping[str, str]], Any]]:
    """`flat_canonical_text` of a mapping with these keys as a %-format of its values' JSON
    texts, and the getter that takes those texts, in the format's (sorted) order, from a
    mapping of key to JSON text. Metadata of one shape repeats from payment to payment: its
    keys are escaped and sorted once, not by the encoder for each record."""
    ordered = sorted(keys)
    pieces = (encode_basestring_ascii(key).replace("%", "%%") + ":%s" for key in ordered)
    return "{" + ",".join(pieces) + "}", itemgetter(*ordered) if ordered else _no_values


@dataclass(frozen=True)
class RecordIdentity:
    """Everything about a record that is in clear and bound to its ciphertext."""

    seq: int
    event_id: str
    kind: str
    captured_at: str
    client_ref: str | None
    store_id: str
    terminal_id: str
    meta: Mapping[str, MetaValue]
    data_key_id: str
    wrapped_key_sha256: str

    def aad(self) -> bytes:
        values: dict[str, Any] = {name: getattr(self, name) for name in _AAD_FIELDS}
        values["meta"] = dict(self.meta)
        return canonical_ascii_json(_sealed(values))


# The AAD's values, in the order of the AAD's text (sorted keys), `sealed_aad` fills them in.
_AAD_FIELDS = (
    *("captured_at", "client_ref", "data_key_id", "wrapped_key_sha256", "event_id", "kind"),
    *("meta", "seq", "store_id", "terminal_id"),
)


def _sealed(values: dict[str, Any]) -> dict[str, Any]:
    """The AAD object of a record's identity (`values`: one per `_AAD_FIELDS` name)."""
    sealed = {name: values[name] for name in SEALED_IDENTITY_FIELDS}
    sealed["schema"] = AAD_SCHEMA
    sealed["data_key"] = {"id": values["data_key_id"], "sha256": values["wrapped_key_sha256"]}
    return sealed


_AAD_TEMPLATE = JsonTemplate(
    _CANONICAL.encode, _sealed({name: hole(name) for name in _AAD_FIELDS}), _AAD_FIELDS
)


def sealed_aad(
    seq: int,
    event_id: str,
    kind: str,
    captured_at: str,
    client_ref: str | None,
    store_id: str,
    terminal_id: str,
    meta_json: str,
    data_key_id: str,
    wrapped_key_sha256: str,
) -> bytes:
    """`RecordIdentity(...).aad()` from the stored clear fields, without parsing the metadata
    or encoding the object: `meta_json` goes in as it is. The same bytes when `meta_json` is
    the metadata's canonical text (what the journal stores); otherwise other bytes, which
    then fail the chain check a caller makes with them, never pass it wrongly: the strings
    are encoded and the rest is constant, so equal bytes mean equal fields."""
    texts = (
        encode_string_ascii(captured_at),
        "null" if client_ref is None else encode_string_ascii(client_ref),
        encode_string_ascii(data_key_id),
        encode_string_ascii(wrapped_key_sha256),
        encode_string_ascii(event_id),
        encode_string_ascii(kind),
        meta_json,
        int.__repr__(seq),
        encode_string_ascii(store_id),
        encode_string_ascii(terminal_id),
    )
    return _AAD_TEMPLATE.fill(texts).encode()


class AadForm:
    """`sealed_aad` for the records of one store, terminal and data key (a writer's records
    until its key rotates): those values' JSON texts are filled in once, not escaped again
    for every record. The same bytes (property-tested)."""

    def __init__(
        self, store_id: str, terminal_id: str, data_key_id: str, wrapped_key_sha256: str
    ) -> None:
        # What the form was made for: (store id, terminal id, data key id).
        self.serves = (store_id, terminal_id, data_key_id)
        repeating = {
            "data_key_id": encode_string_ascii(data_key_id),
            "wrapped_key_sha256": encode_string_ascii(wrapped_key_sha256),
            "store_id": encode_string_ascii(store_id),
            "terminal_id": encode_string_ascii(terminal_id),
        }
        template = _AAD_TEMPLATE.filled(repeating)
        if template.names != _PER_RECORD_FIELDS:
            raise ValueError(f"AAD form holes {template.names} are not {_PER_RECORD_FIELDS}")
        self._format = template.format

    def fill(
        self,
        seq: int,
        event_id: str,
        kind: str,
        captured_at: str,
        client_ref: str | None,
        meta_json: str,
    ) -> bytes:
        """`sealed_aad` of a record with this form's store, terminal and key."""
        return (
            self._format
            % (
                encode_string_ascii(captured_at),
                "null" if client_ref is None else encode_string_ascii(client_ref),
                encode_string_ascii(event_id),
                encode_string_ascii(kind),
                meta_json,
                int.__repr__(seq),
            )
        ).encode()


# The holes an `AadForm` leaves, in the order of the AAD's text.
_PER_RECORD_FIELDS = ("captured_at", "client_ref", "event_id", "kind", "meta", "seq")


def wrapped_key_digest(wrapped_key: bytes) -> str:
    return hashlib.sha256(wrapped_key).hexdigest()


class Sealer:
    """Seals records under one data key (keeps the AES key schedule between records)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise EnvelopeError(f"data key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Encrypt: returns (nonce, ciphertext with tag), a fresh random 96-bit nonce each time."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt, raising `EnvelopeError` if anything (key, nonce, ciphertext, AAD) is wrong."""
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES or len(ciphertext) < TAG_BYTES:
        raise EnvelopeError("envelope has a malformed key, nonce or ciphertext")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as error:
        raise EnvelopeError("envelope authentication failed: tampered or wrong key") from error


def chain_next(previous: bytes, aad: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """SHA-256(previous || SHA-256(aad) || nonce || ciphertext): the parts joined, then hashed
    in one call (a few hundred bytes; fewer calls than an update per part)."""
    return _sha256(b"".join((previous, _sha256(aad).digest(), nonce, ciphertext))).digest()


_sha256 = hashlib.sha256
