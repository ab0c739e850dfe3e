"""The journal's rows: the record view (record + its data key), and what it maps to.

Shared by the journal (capture, leasing) and its verifier.
"""

from __future__ import annotations

import functools
import json
import operator
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

from posd.errors import UsageError
from posd.journal.outcomes import OUTCOME_JOIN, STATE
from sync.outbox import JsonObject, OutboxRecord
from wire.envelope import (
    SEALED_IDENTITY_FIELDS,
    MetaValue,
    RecordIdentity,
    chain_next,
    flat_form,
    sealed_aad,
    wrapped_key_digest,
)
from wire.keys import WrappedKey
from wire.templates import encode_string_ascii

MAX_META_BYTES = 4_096
# Largest amount a record may carry, in minor units (10^13 - 1: about 100 billion in a
# two-decimal currency). Far beyond any payment, far below where sums could overflow.
MAX_AMOUNT_MINOR = 10**13 - 1
# Integers in clear metadata stay exact for every JSON consumer (I-JSON, RFC 7493).
MAX_META_INTEGER = 2**53 - 1
ANCHOR_SEQ = "anchor_seq"
ANCHOR_CHAIN = "anchor_chain"


class RecordState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    QUARANTINED = "quarantined"
    PURGED = "purged"  # delivered, payload erased; kept only while it links the chain


# The delivery columns come from delivery's own database (`outcomes.py`), attached to the
# reader connection these queries run on: a record without an outcome is pending, untried.
NEXT_ATTEMPT_AT = "COALESCE(o.next_attempt_at, 0)"
LEASED_UNTIL = "COALESCE(o.leased_until, 0)"
_COLUMNS = (
    *(
        (f"r.{name}", name)
        for name in (*SEALED_IDENTITY_FIELDS, "data_key_id", "nonce", "ciphertext", "chain")
    ),
    (STATE, "state"),
    ("COALESCE(o.attempts, 0)", "attempts"),
    (NEXT_ATTEMPT_AT, "next_attempt_at"),
    (LEASED_UNTIL, "leased_until"),
    ("o.last_error", "last_error"),
    *(
        (f"k.{name}", name)
        for name in ("provider", "key_arn", "algorithm", "wrapped_key", "encryption_context")
    ),
)
_RECORD_COLUMNS = ", ".join(f"{expression} AS {name}" for expression, name in _COLUMNS)
_RECORD_FROM = f"records r {OUTCOME_JOIN} LEFT JOIN data_keys k ON k.key_id = r.data_key_id"


def select_records(condition: str) -> str:
    """The record view with a constant SQL `condition` (never user input; values are bound)."""
    return f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} {condition}"  # noqa: S608


def select_records_with_previous(condition: str) -> str:
    """The record view plus `previous_chain`, the chain value of the row before each one
    (NULL where that row is gone: the first record, or one after a purge or a deletion)."""
    return (
        f"SELECT {_RECORD_COLUMNS}, p.chain AS previous_chain FROM {_RECORD_FROM} "  # noqa: S608
        f"LEFT JOIN records p ON p.seq = r.seq - 1 {condition}"
    )


def validate_meta(meta: Mapping[str, Any]) -> tuple[dict[str, MetaValue], str]:
    """The metadata checked, and its canonical JSON text (as stored). On every payment's path:
    one pass over the values, each value's JSON text made as it is checked and filled into
    the form of its key set (`wire.envelope.flat_form`): the bytes of `flat_canonical_text`
    (tests/posd/journal/test_meta_check.py); ASCII, so its length is its size in bytes."""
    clean = dict(meta)
    amount = clean.get("amount")
    if amount is not None and (type(amount) is not int or not 0 <= amount <= MAX_AMOUNT_MINOR):
        raise UsageError(f"amount must be an integer from 0 to {MAX_AMOUNT_MINOR} (minor units)")
    texts: dict[str, str] = {}  # each value's JSON text, made as its type is checked
    for key, value in clean.items():
        if type(key) is not str or not key:
            raise UsageError("record metadata keys must be non-empty strings")
        kind = type(value)
        if kind is str:
            texts[key] = encode_string_ascii(value)
        elif value is None:
            texts[key] = "null"
        elif kind is bool:
            texts[key] = "true" if value else "false"
        elif kind is not int:
            raise UsageError(f"record metadata {key!r} must be a string, integer, boolean or null")
        elif not -MAX_META_INTEGER <= value <= MAX_META_INTEGER:
            raise UsageError(f"record metadata {key!r} must be within +/-{MAX_META_INTEGER}")
        else:
            texts[key] = int.__repr__(value)
    form, in_order = flat_form(tuple(texts))  # the keys escaped and sorted once per key set
    text = form % in_order(texts)
    if len(text) > MAX_META_BYTES:
        raise UsageError(f"record metadata is larger than {MAX_META_BYTES} bytes")
    return clean, text


def row_identity(row: sqlite3.Row) -> RecordIdentity:
    return RecordIdentity(
        seq=row["seq"],
        event_id=row["event_id"],
        kind=row["kind"],
        captured_at=row["captured_at"],
        client_ref=row["client_ref"],
        store_id=row["store_id"],
        terminal_id=row["terminal_id"],
        meta=json.loads(row["meta"]),
        data_key_id=row["data_key_id"],
        wrapped_key_sha256=_key_digest(row["wrapped_key"]),
    )


# A data key serves many records in a row: its digest and its delivery view are computed
# once per distinct stored value (the cache keys on every column read, so a changed row is a
# new entry, never a stale one). A handful of keys are live at a time (rotation).
_KEY_CACHE_SIZE = 64
_key_digest = functools.lru_cache(maxsize=_KEY_CACHE_SIZE)(wrapped_key_digest)


@functools.lru_cache(maxsize=_KEY_CACHE_SIZE)
def _wrapped_key(
    key_id: str,
    provider: str,
    key_arn: str,
    algorithm: str,
    wrapped_key: bytes,
    encryption_context: str,
) -> WrappedKey:
    return WrappedKey(
        key_id=key_id,
        provider=provider,
        key_arn=key_arn,
        algorithm=algorithm,
        wrapped_key=wrapped_key,
        # read-only: the one parsed mapping is shared by every record under this key
        encryption_context=MappingProxyType(json.loads(encryption_context)),
    )


def outbox_record(row: sqlite3.Row) -> OutboxRecord:
    """Build the delivery view of a row; raises ValueError/KeyError/TypeError if it is corrupt."""
    if row["wrapped_key"] is None:
        raise ValueError(f"data key {row['data_key_id']} is missing")
    if row["nonce"] is None or row["ciphertext"] is None:
        raise ValueError("payload is missing")
    identity = row_identity(row)
    return OutboxRecord(
        seq=row["seq"],
        event_id=row["event_id"],
        kind=row["kind"],
        captured_at=row["captured_at"],
        client_ref=row["client_ref"],
        meta=identity.meta,
        chain=bytes(row["chain"]).hex(),
        nonce=bytes(row["nonce"]),
        ciphertext=bytes(row["ciphertext"]),
        aad=identity.aad(),
        data_key=_wrapped_key(
            row["data_key_id"],
            row["provider"],
            row["key_arn"],
            row["algorithm"],
            bytes(row["wrapped_key"]),
            row["encryption_context"],
        ),
        attempts=row["attempts"],
    )


# Where each column of the record view is in a row (`previous_chain` last, when selected):
# a hot path reads by position, since `sqlite3.Row` finds a name by comparing it with each
# column's in turn (0.6 us for the last of 23, measured).
COLUMN_INDEX = {name: index for index, (_, name) in enumerate([*_COLUMNS, ("", "previous_chain")])}


class _Linked(NamedTuple):
    """The columns the lease's fast path reads, by position (`sqlite3.Row` looks a name up by
    comparing it with each column in turn)."""

    seq: int
    event_id: str
    kind: str
    captured_at: str
    client_ref: str | None
    store_id: str
    terminal_id: str
    meta: Any
    data_key_id: str
    nonce: Any
    ciphertext: Any
    chain: Any
    attempts: int
    provider: str
    key_arn: str
    algorithm: str
    wrapped_key: Any
    encryption_context: str


_LINKED_COLUMNS = operator.itemgetter(*(COLUMN_INDEX[name] for name in _Linked._fields))


def linked_record(row: sqlite3.Row, link: bytes) -> OutboxRecord | None:
    """The record of a pending row that links to `link` as stored, or None.

    The lease's fast path: the AAD is filled from the stored clear fields
    (`wire.envelope.sealed_aad`), the metadata neither parsed nor encoded. A record sealed
    by posd passes; for anything else (tampered, damaged, metadata stored in another
    spelling) it is None and the full check (`verify.check_row`) decides and says why."""
    r = _Linked._make(_LINKED_COLUMNS(row))
    nonce, ciphertext, chain, wrapped, meta_json = (
        r.nonce,
        r.ciphertext,
        r.chain,
        r.wrapped_key,
        r.meta,
    )
    if not (type(wrapped) is type(nonce) is type(ciphertext) is type(chain) is bytes):
        return None  # missing (NULL) or not what posd writes: the full check says which
    if type(meta_json) is not str:
        return None
    try:
        aad = sealed_aad(
            r.seq,
            r.event_id,
            r.kind,
            r.captured_at,
            r.client_ref,
            r.store_id,
            r.terminal_id,
            meta_json,
            r.data_key_id,
            _key_digest(wrapped),
        )
        if chain_next(link, aad, nonce, ciphertext) != chain:
            return None
        data_key = _wrapped_key(
            r.data_key_id, r.provider, r.key_arn, r.algorithm, wrapped, r.encryption_context
        )
    except (ValueError, TypeError):  # a column of another type or text than posd writes
        return None
    return OutboxRecord(
        seq=r.seq,
        event_id=r.event_id,
        kind=r.kind,
        captured_at=r.captured_at,
        client_ref=r.client_ref,
        meta=JsonObject(meta_json),
        chain=chain.hex(),
        nonce=nonce,
        ciphertext=ciphertext,
        aad=aad,
        data_key=data_key,
        attempts=r.attempts,
        meta_json=meta_json,
    )


def read_anchor(conn: sqlite3.Connection) -> tuple[int, bytes] | None:
    """(seq, chain) of the last record purged from the front of the journal, if any."""
    rows = dict(
        conn.execute(
            "SELECT name, value FROM journal_state WHERE name IN (?, ?)",
            (ANCHOR_SEQ, ANCHOR_CHAIN),
        ).fetchall()
    )
    if ANCHOR_SEQ not in rows:
        return None
    return int(rows[ANCHOR_SEQ]), bytes(rows[ANCHOR_CHAIN])


@dataclass(frozen=True)
class Unreadable:
    """A seq whose row SQLite could not read (a damaged page, undecodable text)."""

    seq: int
    error: str


WALK_BATCH = 500


def walk_rows(
    conn: sqlite3.Connection,
    after_seq: int,
    ceiling: int,
    condition: str = "",
    select: Callable[[str], str] = select_records,
) -> Iterator[sqlite3.Row | Unreadable]:
    """Every row of the record view with seq > `after_seq`, in seq order, surviving damage.

    Rows are read in batches; when a batch fails (a corrupt page, a row that cannot be
    decoded), each seq of that batch's span up to `ceiling` is read on its own, so every row
    that can still be read is yielded and each one that cannot is an `Unreadable`.
    `condition` is a constant SQL filter ("AND r.state = 'pending'"), never user input;
    `select` builds the query (`select_records` or `select_records_with_previous`).
    """
    while True:
        try:
            rows = conn.execute(
                select(f"WHERE r.seq > ? {condition} ORDER BY r.seq LIMIT ?"),
                (after_seq, WALK_BATCH),
            ).fetchall()
        except sqlite3.DatabaseError:
            span_end = min(after_seq + WALK_BATCH, max(ceiling, after_seq + 1))
            for seq in range(after_seq + 1, span_end + 1):
                try:
                    row = conn.execute(select(f"WHERE r.seq = ? {condition}"), (seq,)).fetchone()
                except sqlite3.DatabaseError as error:
                    yield Unreadable(seq, str(error))
                    continue
                if row is not None:
                    yield row
            if span_end >= ceiling:
                return
            after_seq = span_end
            continue
        if not rows:
            return
        yield from rows
        after_seq = int(rows[-1]["seq"])


def seq_ceiling(conn: sqlite3.Connection, known: int | None = None) -> int:
    """The highest seq worth probing: the table's maximum if readable, else what is known."""
    try:
        value = conn.execute("SELECT MAX(seq) FROM records").fetchone()[0]
    except sqlite3.DatabaseError:
        value = None
    return max(int(value or 0), known or 0)


def pending_amount(meta_text: object) -> tuple[str | None, int]:
    """(currency, amount) of a record's clear metadata for the backlog's sums, counting only
    what the summary's SQL counts: valid JSON, a text currency, an integer amount in range."""
    try:
        meta = json.loads(str(meta_text))
    except ValueError:
        return None, 0
    if not isinstance(meta, dict):
        return None, 0
    return meta_amount(meta)


def meta_amount(meta: Mapping[str, Any]) -> tuple[str | None, int]:
    """`pending_amount` of metadata already parsed (an append's, checked by `validate_meta`:
    the same values its stored text parses back to)."""
    currency, amount = meta.get("currency"), meta.get("amount")
    if not isinstance(currency, str) or type(amount) is not int:
        return None, 0
    if not 0 <= amount <= MAX_AMOUNT_MINOR:
        return None, 0
    return currency, amount
