"""Opening one delivered record: unwrap its data key, decrypt, check the sealed identity.

This is the receiving logic every consumer needs (docs/event-format.md); the Lambda consumer,
the demo and the tests all use it. Anything wrong with a record's own bytes raises
`EnvelopeError` (the record is tampered); a data key that cannot be unwrapped raises
`KeyUnavailable` (KMS unreachable or refusing: worth a retry).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from wire.envelope import SEALED_IDENTITY_FIELDS, open_sealed, wrapped_key_digest
from wire.errors import EnvelopeError, IdentityNotBound
from wire.events import EVENT_SCHEMA, b64decode_strict
from wire.keys import KMS_PROVIDER, KeyUnwrapper, WrappedKey, identity_context


def b64(text: Any, what: str) -> bytes:
    """Strict base64 of an envelope field; `EnvelopeError` when it is not."""
    return b64decode_strict(text, what, EnvelopeError)


def wrapped_key_of(detail: dict[str, Any]) -> WrappedKey:
    """The data key of a record's Detail (what `wire.events.data_key_detail` wrote)."""
    try:
        info = detail["envelope"]["data_key"]
        return WrappedKey(
            key_id=str(info["key_id"]),
            provider=str(info["provider"]),
            key_arn=str(info["key_arn"]),
            algorithm=str(info["algorithm"]),
            wrapped_key=b64(info["wrapped_key"], "envelope.data_key.wrapped_key"),
            encryption_context=dict(info.get("encryption_context") or {}),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise EnvelopeError("envelope.data_key is incomplete") from error


def sealed_identity(detail: dict[str, Any], aad: bytes, wrapped: WrappedKey) -> dict[str, Any]:
    """The AAD as a dict, checked against the clear fields of `detail` and the wrapped key.

    Before decryption the AAD is only a claim; GCM authenticates it afterwards. Checking it
    first lets a record whose wrapped key was swapped fail here, without a KMS call."""
    try:
        sealed = json.loads(aad)
        for name in SEALED_IDENTITY_FIELDS:
            if sealed[name] != detail[name]:
                raise EnvelopeError(f"detail.{name} does not match the sealed record")
        if sealed["data_key"]["sha256"] != wrapped_key_digest(wrapped.wrapped_key):
            raise EnvelopeError("the wrapped data key is not the one the record was sealed with")
    except (ValueError, KeyError, TypeError) as error:
        raise EnvelopeError("the associated data is not a sealed posd record") from error
    if not isinstance(sealed, dict):
        raise EnvelopeError("the associated data is not a sealed posd record")
    return sealed


def bound_to_claim(detail: dict[str, Any], wrapped: WrappedKey) -> WrappedKey:
    """The wrapped key to unwrap: for a KMS data key, under the encryption context of the
    identity the record claims (`store_id`, `terminal_id`), never the one the event carries.

    An event whose own context differs is refused here (`IdentityNotBound`), without a KMS
    call: a terminal may get data keys only under its own context, so a record claiming
    another lane with its own key is that terminal filing as another one. One that edits the
    context to match its claim reaches KMS, which refuses it (`cloud.kms` maps that refusal
    to `IdentityNotBound` too)."""
    if wrapped.provider != KMS_PROVIDER:
        return wrapped
    claimed = identity_context(str(detail.get("store_id")), str(detail.get("terminal_id")))
    if dict(wrapped.encryption_context) != claimed:
        raise IdentityNotBound(
            "the data key's encryption context does not name the store and terminal the "
            "record claims"
        )
    return dataclasses.replace(wrapped, encryption_context=claimed)


def decrypt_event(event: dict[str, Any], unwrapper: KeyUnwrapper) -> bytes:
    """The sensitive payload of one delivered event; `EnvelopeError` if anything is off
    (`IdentityNotBound` if its data key does not bind the identity it claims)."""
    detail = event["detail"]
    if detail.get("schema") != EVENT_SCHEMA:
        raise EnvelopeError(f"unknown event schema {detail.get('schema')!r}")
    envelope = detail.get("envelope")
    if not isinstance(envelope, dict):
        raise EnvelopeError("detail.envelope is missing")
    aad = b64(envelope.get("aad"), "envelope.aad")
    wrapped = bound_to_claim(detail, wrapped_key_of(detail))
    sealed_identity(detail, aad, wrapped)
    key = unwrapper.unwrap(wrapped)
    nonce = b64(envelope.get("nonce"), "envelope.nonce")
    ciphertext = b64(envelope.get("ciphertext"), "envelope.ciphertext")
    return open_sealed(key, nonce, ciphertext, aad)
