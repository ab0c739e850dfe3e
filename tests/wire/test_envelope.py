"""Envelope round trip and tamper detection (property-based)."""

from __future__ import annotations

import dataclasses
import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.envelope import (
    GENESIS_CHAIN,
    KEY_BYTES,
    SEALED_IDENTITY_FIELDS,
    RecordIdentity,
    Sealer,
    chain_next,
    open_sealed,
    wrapped_key_digest,
)
from wire.errors import EnvelopeError

meta_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=40)
)
identities = st.builds(
    RecordIdentity,
    seq=st.integers(1, 2**62),
    event_id=st.uuids().map(str),
    kind=st.sampled_from(["card_payment", "palm_payment", "refund"]),
    captured_at=st.just("2026-11-25T12:00:00.000000Z"),
    client_ref=st.one_of(st.none(), st.text(min_size=1, max_size=30)),
    store_id=st.text(min_size=1, max_size=10),
    terminal_id=st.text(min_size=1, max_size=10),
    meta=st.dictionaries(st.text(min_size=1, max_size=12), meta_values, max_size=6),
    data_key_id=st.uuids().map(str),
    wrapped_key_sha256=st.binary(min_size=1, max_size=64).map(wrapped_key_digest),
)


@given(identity=identities, secret=st.binary(max_size=2048))
def test_round_trip(identity: RecordIdentity, secret: bytes) -> None:
    key = os.urandom(KEY_BYTES)
    nonce, ciphertext = Sealer(key).seal(secret, identity.aad())
    assert secret == open_sealed(key, nonce, ciphertext, identity.aad())
    if len(secret) >= 8:
        assert secret not in ciphertext


@given(identity=identities, secret=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_flipped_bit_is_detected(
    identity: RecordIdentity, secret: bytes, data: st.DataObject
) -> None:
    key = os.urandom(KEY_BYTES)
    aad = identity.aad()
    nonce, ciphertext = Sealer(key).seal(secret, aad)
    parts = {"key": key, "nonce": nonce, "ciphertext": ciphertext, "aad": aad}
    target = data.draw(st.sampled_from(sorted(parts)))
    index = data.draw(st.integers(0, len(parts[target]) - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = bytearray(parts[target])
    tampered[index] ^= 1 << bit
    parts[target] = bytes(tampered)
    with pytest.raises(EnvelopeError):
        open_sealed(parts["key"], parts["nonce"], parts["ciphertext"], parts["aad"])


def test_aad_binds_every_clear_field() -> None:
    base = RecordIdentity(
        seq=1,
        event_id="e",
        kind="card_payment",
        captured_at="t",
        client_ref="c",
        store_id="s",
        terminal_id="l",
        meta={"amount": 1},
        data_key_id="k",
        wrapped_key_sha256="d",
    )
    changes = {
        "seq": 2,
        "event_id": "f",
        "kind": "refund",
        "captured_at": "u",
        "client_ref": None,
        "store_id": "s2",
        "terminal_id": "l2",
        "meta": {"amount": 2},
        "data_key_id": "k2",
        "wrapped_key_sha256": "d2",
    }
    key = os.urandom(KEY_BYTES)
    nonce, ciphertext = Sealer(key).seal(b"secret", base.aad())
    for field, value in changes.items():
        other = RecordIdentity(**{**base.__dict__, field: value})
        assert other.aad() != base.aad(), field
        with pytest.raises(EnvelopeError):
            open_sealed(key, nonce, ciphertext, other.aad())


def test_chain_depends_on_previous_and_payload() -> None:
    first = chain_next(GENESIS_CHAIN, b"aad", b"n" * 12, b"c" * 20)
    assert len(first) == 32
    assert chain_next(first, b"aad", b"n" * 12, b"c" * 20) != first
    assert chain_next(GENESIS_CHAIN, b"aad", b"n" * 12, b"d" * 20) != first
    assert chain_next(GENESIS_CHAIN, b"aae", b"n" * 12, b"c" * 20) != first


def test_wrong_key_length_is_refused() -> None:
    with pytest.raises(EnvelopeError):
        Sealer(b"short")


def test_aad_is_the_documented_canonical_json() -> None:
    """docs/event-format.md, "The associated data": these bytes are hashed into the chain."""
    identity = RecordIdentity(
        seq=1,
        event_id="e",
        kind="card_payment",
        captured_at="t",
        client_ref=None,
        store_id="s",
        terminal_id="l",
        meta={"amount": 1, "note": "caf\u00e9"},
        data_key_id="k",
        wrapped_key_sha256="d",
    )
    assert identity.aad() == (
        b'{"captured_at":"t","client_ref":null,"data_key":{"id":"k","sha256":"d"},'
        b'"event_id":"e","kind":"card_payment","meta":{"amount":1,"note":"caf\\u00e9"},'
        b'"schema":"posd.record.v1","seq":1,"store_id":"s","terminal_id":"l"}'
    )


def test_the_sealed_identity_fields_are_the_records_clear_fields() -> None:
    """One list says which clear fields a reader compares with the AAD; the record has each."""
    names = {field.name for field in dataclasses.fields(RecordIdentity)}
    assert set(SEALED_IDENTITY_FIELDS) == names - {"data_key_id", "wrapped_key_sha256"}


@given(st.binary(min_size=32, max_size=32), st.binary(), st.binary(max_size=12), st.binary())
def test_the_chain_link_is_the_hash_of_its_parts_in_order(
    previous: bytes, aad: bytes, nonce: bytes, ciphertext: bytes
) -> None:
    """`chain_next` hashes the parts joined: the same value as one update per part (the
    definition in the module's docstring, and what every journal so far was chained with)."""
    digest = hashlib.sha256(previous)
    digest.update(hashlib.sha256(aad).digest())
    digest.update(nonce)
    digest.update(ciphertext)
    assert chain_next(previous, aad, nonce, ciphertext) == digest.digest()
