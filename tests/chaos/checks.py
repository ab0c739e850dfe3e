"""The promise, checked after the drain: what the journal holds, what the queue received, what
the register was told. Each broken invariant is one line in `violations`."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posd.journal.files import DELIVERY_FILE
from posd.journal.outcomes import OUTCOME_JOIN, STATE
from tests.chaos.faults import FaultRecord
from tests.chaos.register import Exchange, RegisterLog
from tests.chaos.rig import PALM_CREDENTIAL
from wire.envelope import GENESIS_CHAIN, chain_next
from wire.errors import EnvelopeError, KeyUnavailable
from wire.events import ALARM_DETAIL_TYPE, CHECKPOINT_DETAIL_TYPE, SIDE_DETAIL_TYPES
from wire.keys import CachingUnwrapper
from wire.opening import decrypt_event

RECOVERY_BOUND_S = 90.0  # generous: a broken lane, not a slow machine
VOID_KIND = "payment_void"


@dataclass(frozen=True)
class JournalRow:
    seq: int
    event_id: str
    client_ref: str | None
    kind: str
    terminal_id: str
    meta: dict[str, Any]
    state: str


def journal_rows(db: Path) -> list[JournalRow]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.execute("ATTACH DATABASE ? AS delivery", (f"file:{db.with_name(DELIVERY_FILE)}?mode=ro",))
    try:
        rows = conn.execute(
            "SELECT r.seq, r.event_id, r.client_ref, r.kind, r.terminal_id, r.meta, "
            f"{STATE} FROM records r {OUTCOME_JOIN} ORDER BY r.seq"
        ).fetchall()
    finally:
        conn.close()
    return [JournalRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]


def secret_matches(kind: str, meta: dict[str, Any], secret: dict[str, Any]) -> bool:
    """Whether a decrypted payload is what the clear metadata says was captured."""
    if kind == VOID_KIND:
        return secret == {}
    if meta.get("entry_mode") == "palm":
        return bool(secret.get("palm_credential") == PALM_CREDENTIAL)
    pan = str(secret.get("pan", ""))
    return bool(pan) and pan.startswith(str(meta["bin"])) and pan.endswith(str(meta["last4"]))


@dataclass
class Delivery:
    """What the queue received, deduplicated by event_id, each decrypted once."""

    copies: int = 0
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> detail
    secrets: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # None: failed
    alarms: int = 0
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> detail


def decrypt_all(events: list[dict[str, Any]], unwrapper: CachingUnwrapper) -> Delivery:
    delivery = Delivery()
    for event in events:
        if event.get("detail-type") == ALARM_DETAIL_TYPE:
            delivery.alarms += 1
        if event.get("detail-type") == CHECKPOINT_DETAIL_TYPE:
            delivery.checkpoints[event["detail"]["event_id"]] = event["detail"]
        if event.get("detail-type") in SIDE_DETAIL_TYPES:
            continue  # alarms and checkpoints are not records
        delivery.copies += 1
        detail = event["detail"]
        if detail["event_id"] in delivery.records:
            continue
        delivery.records[detail["event_id"]] = detail
        try:
            delivery.secrets[detail["event_id"]] = json.loads(decrypt_event(event, unwrapper))
        except (EnvelopeError, KeyUnavailable, ValueError):
            delivery.secrets[detail["event_id"]] = None
    return delivery


def check_idempotency(rows: list[JournalRow], register: RegisterLog) -> list[str]:
    problems = [f"client_ref {ref} was answered with two event_ids" for ref in register.mismatches]
    by_ref: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.client_ref is not None:
            by_ref[row.client_ref].append(row.seq)
    twice = {ref: seqs for ref, seqs in by_ref.items() if len(seqs) > 1}
    problems += [f"client_ref {ref}: records {seqs}" for ref, seqs in twice.items()]
    return problems


def check_delivery(rows: list[JournalRow], delivery: Delivery, register: RegisterLog) -> list[str]:
    problems = []
    journal_ids = {row.event_id for row in rows}
    for row in rows:
        secret = delivery.secrets.get(row.event_id)
        if row.event_id not in delivery.records:
            continue  # counted as lost
        if secret is None or not secret_matches(row.kind, row.meta, secret):
            problems.append(f"seq {row.seq} does not decrypt to what was captured")
    for ref, answer in {**register.acknowledged, **register.voids}.items():
        if answer["event_id"] not in journal_ids:
            problems.append(f"acknowledged {ref} ({answer['event_id']}) is not in the journal")
        elif answer["event_id"] not in delivery.records:
            problems.append(f"acknowledged {ref} never reached the queue")
    for ref, answer in register.acknowledged.items():
        detail = delivery.records.get(answer["event_id"])
        if detail is not None and detail["meta"].get("amount") != answer["amount_minor"]:
            problems.append(f"acknowledged {ref}: the delivered amount is not the answered one")
    return problems


def check_seq(rows: list[JournalRow], delivery: Delivery) -> list[str]:
    problems = []
    by_terminal: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_terminal[row.terminal_id].append(row.seq)
    for terminal, seqs in by_terminal.items():
        expected = list(range(seqs[0], seqs[0] + len(seqs)))
        if seqs != expected or seqs[0] != 1:
            problems.append(f"seq of {terminal} has gaps: {sorted(set(expected) - set(seqs))[:10]}")
    delivered = sorted(d["seq"] for d in delivery.records.values())
    if delivered != [row.seq for row in rows]:
        problems.append("the seqs delivered are not the journal's")
    return problems


def check_checkpoints(delivery: Delivery) -> list[str]:
    """What the cloud proves with the checkpoints received: per journal, ranges contiguous from
    seq 1 and genesis, and each range's chain recomputed over the records received from its
    `chain_before` lands on its `chain` (every record there, none altered)."""
    problems = []
    records = {(d["journal_id"], d["seq"]): d for d in delivery.records.values()}
    by_journal: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for checkpoint in delivery.checkpoints.values():
        by_journal[checkpoint["journal_id"]].append(checkpoint)
    for journal_id, checkpoints in by_journal.items():
        last_seq, chain = 0, GENESIS_CHAIN.hex()
        for checkpoint in sorted(checkpoints, key=lambda c: int(c["first_seq"])):
            first, last = int(checkpoint["first_seq"]), int(checkpoint["last_seq"])
            if (first, checkpoint["chain_before"]) != (last_seq + 1, chain):
                problems.append(f"checkpoint {first}..{last} does not continue {last_seq}")
            missing = [s for s in range(first, last + 1) if (journal_id, s) not in records]
            if missing:
                problems.append(f"checkpoint {first}..{last}: seqs {missing[:10]} never arrived")
            elif (
                _chain_over(checkpoint["chain_before"], records, journal_id, first, last)
                != (checkpoint["chain"])
            ):
                problems.append(f"checkpoint {first}..{last}: the chain does not prove")
            last_seq, chain = last, checkpoint["chain"]
    return problems


def _chain_over(
    before: str,
    records: dict[tuple[str, int], dict[str, Any]],
    journal_id: str,
    first: int,
    last: int,
) -> str:
    chain = bytes.fromhex(before)
    for seq in range(first, last + 1):
        envelope = records[(journal_id, seq)]["envelope"]
        parts = (base64.b64decode(envelope[name]) for name in ("aad", "nonce", "ciphertext"))
        chain = chain_next(chain, *parts)
    return chain.hex()


def recoveries(faults: list[FaultRecord], exchanges: list[Exchange]) -> list[float | None]:
    """Per fault: seconds from its lifting to the next payment answered 201 (None: never)."""
    served = sorted(
        e.answered_at for e in exchanges if e.status == 201 and e.path == "/v1/payments"
    )
    result: list[float | None] = []
    for fault in faults:
        lifted = fault.lifted if fault.lifted is not None else fault.started
        after = next((t for t in served if t >= lifted), None)
        result.append(None if after is None else after - lifted)
    return result


def check_recovery(faults: list[FaultRecord], times: list[float | None]) -> list[str]:
    problems = []
    for fault, seconds in zip(faults, times, strict=True):
        if seconds is None:
            problems.append(f"{fault.kind}: the lane never served a payment again")
        elif seconds > RECOVERY_BOUND_S:
            problems.append(f"{fault.kind}: the lane served again only after {seconds:.1f} s")
    return problems


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
