"""`posd journal verify`: structure, hash chain, ciphertext integrity and the stored
checkpoints against the chain, without decrypting."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from posd.journal.checkpoints import check_all
from posd.journal.identity import accepted_gap
from posd.journal.rows import (
    RecordState,
    Unreadable,
    read_anchor,
    row_identity,
    seq_ceiling,
    walk_rows,
)
from wire.envelope import GENESIS_CHAIN, chain_next

PROGRESS_EVERY = 1000


@dataclass(frozen=True)
class Problem:
    seq: int | None
    kind: str
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    records_checked: int
    first_seq: int | None
    last_seq: int | None
    problems: tuple[Problem, ...]
    checkpoints_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_journal(
    conn: sqlite3.Connection,
    progress: Callable[[int, int], None] | None = None,
    *,
    issued_through: int | None = None,
) -> VerifyReport:
    """Walk the journal from its anchor: structure, seq continuity, every chain link, every
    payload, and the tail against the highest seq ever issued (`issued_through`, from the
    identity file). Reports every problem it can reach; never raises for a damaged file."""
    problems: list[Problem] = []
    _check_structure(conn, problems)
    try:
        anchor, gap = read_anchor(conn), accepted_gap(conn)
    except (sqlite3.DatabaseError, ValueError) as error:
        problems.append(Problem(None, "structure", f"journal state is unreadable: {error}"))
        anchor, gap = None, None
    try:
        total = int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    except sqlite3.DatabaseError:
        total = 0  # unknown: the walk below still reaches every readable row
    expected_seq, previous = (anchor[0] + 1, anchor[1]) if anchor else (1, GENESIS_CHAIN)
    checked = 0
    first_seq = last_seq = None
    ceiling = seq_ceiling(conn, issued_through)
    for row in walk_rows(conn, expected_seq - 1, ceiling):
        if isinstance(row, Unreadable):
            problems.append(Problem(row.seq, "unreadable", f"row cannot be read: {row.error}"))
            previous = b""  # the next record's link cannot be checked against it
            expected_seq = row.seq + 1
            continue
        seq = int(row["seq"])
        first_seq = seq if first_seq is None else first_seq
        last_seq = seq
        accepted = gap is not None and expected_seq == gap[0] + 1 and seq == gap[1] + 1
        if seq != expected_seq and not accepted:
            problems.append(Problem(seq, "gap", f"expected seq {expected_seq}, found {seq}"))
        problems.extend(check_row(row, previous or None))
        previous = bytes(row["chain"])
        expected_seq = seq + 1
        checked += 1
        if progress is not None and checked % PROGRESS_EVERY == 0:
            progress(checked, max(total, checked))
    if progress is not None:
        progress(checked, max(total, checked))
    reached = max(expected_seq - 1, gap[1] if gap else 0)
    if issued_through is not None and reached < issued_through:
        problems.append(
            Problem(
                reached + 1,
                "lost_tail",
                f"records {reached + 1}..{issued_through} were committed (the identity file "
                "says so) and are gone: a lost or truncated WAL?",
            )
        )
    try:
        checkpoints, disagreements = check_all(conn)
    except sqlite3.DatabaseError as error:
        checkpoints, disagreements = 0, []
        problems.append(Problem(None, "structure", f"checkpoints are unreadable: {error}"))
    problems.extend(Problem(p.seq, "checkpoint", p.detail) for p in disagreements)
    return VerifyReport(checked, first_seq, last_seq, tuple(problems), checkpoints)


def _check_structure(conn: sqlite3.Connection, problems: list[Problem]) -> None:
    try:
        messages = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.DatabaseError as error:
        messages = [f"quick_check failed: {error}"]
    problems.extend(Problem(None, "structure", m) for m in messages if m != "ok")


def check_row(row: sqlite3.Row, previous: bytes | None, aad: bytes | None = None) -> list[Problem]:
    """The row's own problems; with `previous` (the chain value before it) also its link.
    `aad`: the row's AAD if the caller already computed it from this very row."""
    seq = int(row["seq"])
    if row["state"] == RecordState.PURGED:
        return []  # payload erased on purpose; its stored chain value links the next one
    if row["wrapped_key"] is None:
        return [Problem(seq, "data_key", f"data key {row['data_key_id']} is missing")]
    if row["nonce"] is None or row["ciphertext"] is None:
        return [Problem(seq, "payload", "nonce or ciphertext is missing")]
    if aad is None:
        try:
            aad = row_identity(row).aad()
        except (ValueError, TypeError) as error:
            return [Problem(seq, "metadata", f"clear metadata is not valid JSON: {error}")]
    if previous is None:
        return []
    actual = chain_next(previous, aad, bytes(row["nonce"]), bytes(row["ciphertext"]))
    if actual != bytes(row["chain"]):
        return [
            Problem(
                seq,
                "chain",
                "chain mismatch: the record's metadata, nonce, ciphertext or data key "
                "changed, or the previous record did",
            )
        ]
    return []
