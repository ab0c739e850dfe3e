"""The records table's rows: one per journal seq, claimed with conditional writes.

A row holds what the chain check needs (AAD, nonce, ciphertext, the record's chain) and whose
record it is (`event_id`). Who may take a seq:

- a record whose data key binds its identity (a KMS data key under the claimed lane's
  encryption context) takes a free seq, its own row again (a retry), or a row held by an
  unproven record or a terminal's tamper report (a record beats a report: a terminal never
  forwards a record it reports). Replacing another record's held row raises
  `conflicting_record`: two records for one seq.
- an unproven record (an offline `kms-rsa` data key: anyone with the public key can wrap one)
  takes a free seq or a tamper report's row, and is *held*: its payment waits in the row
  (`held`, masked fields only) until a signed checkpoint whose range is complete and whose
  chain holds covers it (`release`). Until then it is not filed.
- a terminal's tamper report takes only a free seq (a conditional put: a record that landed
  between a read and a write is never overwritten).

A claim that finds another record in the row is refused (`Claim.CONFLICT`): the consumer raises
`conflicting_record` and files nothing for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from cloud.store import BATCH_WRITE_LIMIT, Put, Store
from wire.keys import IDENTITY_BINDING_PROVIDERS

RECEIVED = "received"
REPORTED_TAMPERED = "reported_tampered"
HELD = "held"  # the attribute holding an unproven record's payment
# The attribute holding a payment whose P2PE block AWS Payment Cryptography refused
# (`cloud.p2pe`), or whose KSN another event used first (`cloud.ksns`): alarmed (`p2pe_refused`,
# `p2pe_ksn_reused`), never released by a checkpoint.
P2PE_HELD = "p2pe_held"


class Claim(StrEnum):
    TAKEN = "taken"  # the row is this record's now (or already was)
    REPLACED = "replaced"  # taken from another, unproven record: two records for one seq
    CONFLICT = "conflict"  # another record holds the seq: refused


# A row is this record's own when its event and chain are the same (a retry after a crash
# between the row and the dedupe marker, or a copy delivered twice).
_FREE_OR_OWN = "attribute_not_exists(#seq) OR (#event = :event AND #chain = :chain)"
_OWN_NAMES = {"#seq": "seq", "#event": "event_id", "#chain": "chain"}


class RecordRows:
    def __init__(self, store: Store) -> None:
        self._store = store

    def claim(self, row: Mapping[str, Any], proven: bool) -> tuple[Claim, dict[str, Any] | None]:
        """Take the row's seq for this record; returns the claim and the row it displaced or
        that refused it (None when the seq was free or its own)."""
        table = self._store.tables.records
        own = {":event": row["event_id"], ":chain": row["chain"]}
        condition = f"{_FREE_OR_OWN} OR #state = :reported"
        names = {**_OWN_NAMES, "#state": "state"}
        if self._store.put_if(
            table, row, condition, names, {**own, ":reported": REPORTED_TAMPERED}
        ):
            return Claim.TAKEN, None
        existing = self._store.get(table, _key(row))
        if proven and existing is not None and _unproven(existing):
            # held by another (unproven) record: take it, but only from that one
            if self._store.put_if(
                table,
                row,
                f"{_FREE_OR_OWN} OR #event = :other",
                _OWN_NAMES,
                {**own, ":other": existing["event_id"]},
            ):
                return Claim.REPLACED, existing
            existing = self._store.get(table, _key(row))
        return Claim.CONFLICT, existing

    def report_tampered(self, row: Mapping[str, Any]) -> bool:
        """A terminal's report that a seq was tampered; False if a record holds the seq."""
        return self._store.put_if(
            self._store.tables.records, row, "attribute_not_exists(#seq)", {"#seq": "seq"}
        )

    def release(self, journal_id: str, first_seq: int, last_seq: int) -> list[str]:
        """File the payments held in seqs first..last (their range is proven now); returns
        their event_ids. Idempotent: a payment is keyed by its event_id, and a row lets go of
        its payment only after it is filed."""
        held = [
            row
            for row in self._store.records_between(journal_id, first_seq, last_seq)
            if HELD in row
        ]
        puts = [Put(self._store.tables.payments, row[HELD]) for row in held]
        for start in range(0, len(puts), BATCH_WRITE_LIMIT):
            self._store.write_batch(puts[start : start + BATCH_WRITE_LIMIT])
        for row in held:
            self._store.remove_if(
                self._store.tables.records,
                _key(row),
                HELD,
                "#e = :event",
                {":event": row["event_id"]},
                names={"#e": "event_id"},
            )
        return [str(row["event_id"]) for row in held]


def _unproven(row: Mapping[str, Any]) -> bool:
    """A row taken by a record whose key does not bind its lane (held until proven, or held
    for its P2PE block)."""
    refused = row.get(P2PE_HELD)
    if isinstance(refused, Mapping):
        return refused.get("key_provider") not in IDENTITY_BINDING_PROVIDERS
    return HELD in row


def _key(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"journal_id": row["journal_id"], "seq": row["seq"]}
