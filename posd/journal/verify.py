"""`posd journal verify`: structure, hash chain and ciphertext integrity, without decrypting."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from posd.envelope import GENESIS_CHAIN, chain_next
from posd.journal.rows import RecordState, read_anchor, row_identity, select_records

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

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_journal(
    conn: sqlite3.Connection, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Walk the journal from its anchor: seq continuity, every chain link, every payload."""
    problems: list[Problem] = []
    for (message,) in conn.execute("PRAGMA quick_check").fetchall():
        if message != "ok":
            problems.append(Problem(None, "structure", str(message)))
    total = int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    anchor = read_anchor(conn)
    expected_seq, previous = (anchor[0] + 1, anchor[1]) if anchor else (1, GENESIS_CHAIN)
    checked = 0
    first_seq = last_seq = None
    for row in conn.execute(select_records("ORDER BY r.seq")):
        seq = int(row["seq"])
        first_seq = seq if first_seq is None else first_seq
        last_seq = seq
        if seq != expected_seq:
            problems.append(Problem(seq, "gap", f"expected seq {expected_seq}, found {seq}"))
        problems.extend(check_row(row, previous))
        previous = bytes(row["chain"])
        expected_seq = seq + 1
        checked += 1
        if progress is not None and checked % PROGRESS_EVERY == 0:
            progress(checked, total)
    if progress is not None:
        progress(checked, total)
    return VerifyReport(checked, first_seq, last_seq, tuple(problems))


def check_row(row: sqlite3.Row, previous: bytes) -> list[Problem]:
    seq = int(row["seq"])
    if row["state"] == RecordState.PURGED:
        return []  # payload erased on purpose; its stored chain value links the next one
    if row["wrapped_key"] is None:
        return [Problem(seq, "data_key", f"data key {row['data_key_id']} is missing")]
    if row["nonce"] is None or row["ciphertext"] is None:
        return [Problem(seq, "payload", "nonce or ciphertext is missing")]
    try:
        aad = row_identity(row).aad()
    except (ValueError, TypeError) as error:
        return [Problem(seq, "metadata", f"clear metadata is not valid JSON: {error}")]
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
