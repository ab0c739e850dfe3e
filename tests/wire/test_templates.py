"""The AAD and the Detail filled into templates are the bytes the encoders give, always.

Consumers dedupe and verify on these bytes (docs/event-format.md), and the chain hashes the
AAD: a template that differed from `canonical_ascii_json` or `detail_json` by one byte would
change the contract or refuse every record. The golden texts were made by the encoders before
the templates existed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.outbox import OutboxRecord
from tests.wire.test_envelope import identities
from wire.envelope import (
    FLAT_FORMS_CACHED,
    AadForm,
    RecordIdentity,
    canonical_ascii_json,
    flat_form,
    sealed_aad,
)
from wire.events import (
    data_key_detail,
    detail_json,
    meta_detail_json,
    record_detail,
    record_detail_json,
)
from wire.keys import WrappedKey
from wire.templates import JsonTemplate, hole

KEY = WrappedKey(
    "k1",
    "kms",
    "arn:aws:kms:us-east-1:1:key/x",
    "SYMMETRIC_DEFAULT",
    b"\x03" * 8,
    {"store_id": "store-1", "terminal_id": "lane-2"},
)
RECORD = OutboxRecord(
    seq=7,
    event_id="0193a6f2-0000-7000-8000-000000000007",
    kind="payment.card",
    captured_at="2026-11-25T12:00:00.123456Z",
    client_ref='reg-\u00e9"1',
    meta={"amount": 1250, "currency": "EUR", "note": "caf\u00e9\n", "ok": True, "x": None},
    chain="ab" * 32,
    nonce=b"\x01" * 12,
    ciphertext=b"\x02" * 40,
    aad=b'{"schema":"posd.record.v1"}',
    data_key=KEY,
    attempts=0,
)
GOLDEN_DETAIL = (
    '{"captured_at":"2026-11-25T12:00:00.123456Z","chain":"' + "ab" * 32 + '",'
    '"client_ref":"reg-\u00e9\\"1","envelope":{"aad":"eyJzY2hlbWEiOiJwb3NkLnJlY29yZC52MSJ9",'
    '"algorithm":"AES-256-GCM",'
    '"ciphertext":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg==",'
    '"data_key":{"algorithm":"SYMMETRIC_DEFAULT","encryption_context":{"store_id":"store-1",'
    '"terminal_id":"lane-2"},"key_arn":"arn:aws:kms:us-east-1:1:key/x","key_id":"k1",'
    '"provider":"kms","wrapped_key":"AwMDAwMDAwM="},"nonce":"AQEBAQEBAQEBAQEB"},'
    '"event_id":"0193a6f2-0000-7000-8000-000000000007","journal_id":"journal-1",'
    '"kind":"payment.card","meta":{"amount":1250,"currency":"EUR","note":"caf\u00e9\\n",'
    '"ok":true,"x":null},"schema":"posd.event/1","seq":7,"store_id":"store-1",'
    '"terminal_id":"lane-2"}'
)
GOLDEN_AAD = (
    b'{"captured_at":"2026-11-25T12:00:00Z","client_ref":null,"data_key":{"id":"k1","sha256":"'
    + b"ab" * 32
    + b'"},"event_id":"e1","kind":"payment.card","meta":{"amount":5,"note":"caf\\u00e9"},'
    b'"schema":"posd.record.v1","seq":7,"store_id":"store-\\u00e9","terminal_id":"lane-2"}'
)


def _aad_of(identity: RecordIdentity, meta_json: str) -> bytes:
    return sealed_aad(
        identity.seq,
        identity.event_id,
        identity.kind,
        identity.captured_at,
        identity.client_ref,
        identity.store_id,
        identity.terminal_id,
        meta_json,
        identity.data_key_id,
        identity.wrapped_key_sha256,
    )


def _detail_json(record: OutboxRecord, meta_json: str) -> str:
    key_json = detail_json(data_key_detail(record.data_key))
    return record_detail_json(record, "store-1", "lane-2", "journal-1", key_json, meta_json)


def test_the_golden_aad_and_detail() -> None:
    identity = RecordIdentity(
        7,
        "e1",
        "payment.card",
        "2026-11-25T12:00:00Z",
        None,
        "store-\u00e9",
        "lane-2",
        {"note": "caf\u00e9", "amount": 5},
        "k1",
        "ab" * 32,
    )
    assert identity.aad() == GOLDEN_AAD
    assert _aad_of(identity, canonical_ascii_json(identity.meta).decode()) == GOLDEN_AAD
    assert detail_json(record_detail(RECORD, "store-1", "lane-2", "journal-1")) == GOLDEN_DETAIL
    meta_json = meta_detail_json(canonical_ascii_json(RECORD.meta).decode())
    assert _detail_json(RECORD, meta_json) == GOLDEN_DETAIL


@given(identity=identities)
def test_the_aad_template_is_the_encoders_bytes(identity: RecordIdentity) -> None:
    assert _aad_of(identity, canonical_ascii_json(identity.meta).decode()) == identity.aad()


@given(identity=identities)
def test_metadata_in_another_spelling_gives_other_aad_bytes(identity: RecordIdentity) -> None:
    spaced = canonical_ascii_json(identity.meta).decode().replace(":", ": ", 1)
    if identity.meta:
        assert _aad_of(identity, spaced) != identity.aad()


@given(identity=identities, client_ref=st.one_of(st.none(), st.text(max_size=20)))
def test_the_detail_template_is_the_encoders_bytes(
    identity: RecordIdentity, client_ref: str | None
) -> None:
    record = dataclasses.replace(
        RECORD,
        seq=identity.seq,
        event_id=identity.event_id,
        kind=identity.store_id,  # any text: the kind is the record's own
        client_ref=client_ref,
        meta=identity.meta,
        chain=identity.wrapped_key_sha256,
    )
    expected = detail_json(record_detail(record, "store-1", "lane-2", "journal-1"))
    assert _detail_json(record, meta_detail_json(canonical_ascii_json(record.meta).decode())) == (
        expected
    )


def test_a_template_names_every_hole() -> None:
    with pytest.raises(ValueError, match="holes"):
        JsonTemplate(detail_json, {"a": hole("a"), "b": hole("b")}, ("b", "a"))


@given(identity=identities)
def test_a_form_for_one_store_terminal_and_key_gives_the_encoders_bytes(
    identity: RecordIdentity,
) -> None:
    form = AadForm(
        identity.store_id, identity.terminal_id, identity.data_key_id, identity.wrapped_key_sha256
    )
    aad = form.fill(
        identity.seq,
        identity.event_id,
        identity.kind,
        identity.captured_at,
        identity.client_ref,
        canonical_ascii_json(identity.meta).decode(),
    )
    assert aad == identity.aad()
    assert form.serves == (identity.store_id, identity.terminal_id, identity.data_key_id)


def test_filling_some_holes_leaves_a_template_of_the_others() -> None:
    template = JsonTemplate(json.dumps, {"a": hole("a"), "b": hole("b"), "c": "50%"}, ("a", "b"))
    partly = template.filled({"b": '"x%s"'})
    assert partly.names == ("a",)
    assert partly.fill(("1",)) == json.dumps({"a": 1, "b": "x%s", "c": "50%"})


@given(
    st.dictionaries(
        st.text(min_size=1),
        st.text() | st.integers(-(2**53), 2**53) | st.booleans() | st.none(),
        max_size=8,
    )
)
def test_a_flat_form_fills_to_the_canonical_text(meta: dict[str, Any]) -> None:
    """`flat_form`: a key set's form, filled with the values' JSON texts, is the encoder's
    canonical text of the mapping, whatever the keys (quotes, %, non-ASCII) and their order."""
    texts = {key: canonical_ascii_json(value).decode() for key, value in meta.items()}
    form, in_order = flat_form(tuple(texts))
    assert (form % in_order(texts)).encode() == canonical_ascii_json(meta)
    assert flat_form.cache_info().maxsize == FLAT_FORMS_CACHED
