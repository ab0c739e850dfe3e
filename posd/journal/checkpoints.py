"""Checkpoints: the journal's signed-off ranges, sent to the cloud as `posd.checkpoint` events.

A checkpoint says "seqs `first_seq`..`last_seq` were issued, and the chain runs from
`chain_before` to `chain` over them". With it a consumer proves it holds every record of the
range and that none was altered (it recomputes `chain_next` from `chain_before` over the
records it received and must land on `chain`), and it tells a gap (a checkpoint names a seq
it never received) from a lane that is simply offline (no checkpoint names it yet).

Ranges of one journal are contiguous: each starts right after the previous one ended, with
its `chain_before` equal to the previous `chain`. The first one starts after the start of the
journal: genesis, the anchor of a journal reset (`accept_loss`: a new journal_id whose chain
starts from the anchor), or the purge anchor of a journal written before checkpoints existed.

A checkpoint is written in the same transaction as the record that completes it (every N
records: see `Journal.append`), or by a timer over what was appended since the last one; never
an empty one. Records quarantined as tampered are covered like any other: the chain values
are those written at append time, and the cloud hears of the tampering by an alarm.

Purging records never needs to wait for a checkpoint: a checkpoint holds only seq numbers and
chain values, copied when it is cut, so it needs no record to be sent or checked later. Sent
checkpoints are forgotten once purge removed their records, except the newest (the next range
starts from it).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from posd.ids import uuid7_str
from posd.journal.identity import chain_at
from posd.journal.rows import read_anchor
from sync.outbox import Checkpoint
from wire.envelope import GENESIS_CHAIN

Mark = tuple[int, bytes]
"""(seq, chain value after it): where a range ends or the next one starts from."""

_COLUMNS = (
    "checkpoint_id, event_id, journal_id, first_seq, last_seq, chain_before, chain, created_at"
)


@dataclass(frozen=True)
class CheckpointStatus:
    """For status displays: the end of the last checkpoint, and how many wait to be sent."""

    last_seq: int | None
    pending: int
    uncovered: int = 0  # records appended after the last checkpoint (none covers them yet)


def covered_through(conn: sqlite3.Connection) -> Mark:
    """Where the next checkpoint starts from: the end of the last one, else the start of the
    journal (the reset or purge anchor, or genesis)."""
    row = conn.execute(
        "SELECT last_seq, chain FROM checkpoints ORDER BY last_seq DESC LIMIT 1"
    ).fetchone()
    if row is not None:
        return int(row[0]), bytes(row[1])
    return read_anchor(conn) or (0, GENESIS_CHAIN)


def newest_record(conn: sqlite3.Connection) -> Mark | None:
    """The last record written (or, if purge removed every row, the purge anchor). Not the
    end of an accepted gap: no record carries a chain value there."""
    row = conn.execute("SELECT seq, chain FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    if row is not None:
        return int(row[0]), bytes(row[1])
    return read_anchor(conn)


def insert(
    conn: sqlite3.Connection, journal_id: str, start: Mark, end: Mark, created_at: str
) -> None:
    """Journal the checkpoint over `start`'s seq + 1 .. `end`'s seq (inside the caller's
    transaction). Raises `sqlite3.IntegrityError` if another writer covered the range first."""
    conn.execute(
        "INSERT INTO checkpoints (event_id, journal_id, first_seq, last_seq, chain_before, "
        "chain, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (uuid7_str(), journal_id, start[0] + 1, end[0], start[1], end[1], created_at),
    )


def cut_if_any(conn: sqlite3.Connection, journal_id: str, created_at: str) -> Mark | None:
    """The timer's cut: a checkpoint over every record since the last one, if there is any.
    Returns where it ends, or None (nothing new: no empty checkpoint)."""
    start, end = covered_through(conn), newest_record(conn)
    if end is None or end[0] <= start[0]:
        return None
    insert(conn, journal_id, start, end, created_at)
    return end


def _checkpoint(row: sqlite3.Row) -> Checkpoint:
    return Checkpoint(
        checkpoint_id=int(row["checkpoint_id"]),
        event_id=str(row["event_id"]),
        journal_id=str(row["journal_id"]),
        first_seq=int(row["first_seq"]),
        last_seq=int(row["last_seq"]),
        chain_before=bytes(row["chain_before"]).hex(),
        chain=bytes(row["chain"]).hex(),
        created_at=str(row["created_at"]),
    )


# Which checkpoints EventBridge took is delivery's to know (`outcomes.py`): these read the
# journal's reader connection, delivery's database attached to it.
_UNSENT = (
    "NOT EXISTS (SELECT 1 FROM delivery.checkpoints_sent s "
    "WHERE s.checkpoint_id = checkpoints.checkpoint_id)"
)


def unsent(conn: sqlite3.Connection, limit: int) -> list[Checkpoint]:
    """Checkpoints EventBridge has not accepted yet, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM checkpoints WHERE {_UNSENT} "  # noqa: S608 - constant
        "ORDER BY checkpoint_id LIMIT ?",
        (limit,),
    ).fetchall()
    return [_checkpoint(row) for row in rows]


# On delivery's own connection; parameters (sent_at, checkpoint_id).
MARK_SENT = "INSERT OR IGNORE INTO checkpoints_sent (sent_at, checkpoint_id) VALUES (?, ?)"
SENT_IDS = "SELECT checkpoint_id FROM checkpoints_sent"


def forget_sent(conn: sqlite3.Connection, sent: frozenset[int]) -> int:
    """Delete the `sent` checkpoints whose records purge removed, keeping the newest one."""
    anchor = read_anchor(conn)
    if anchor is None or not sent:
        return 0
    rows = conn.execute(
        "SELECT checkpoint_id FROM checkpoints WHERE last_seq <= ? "
        "AND last_seq < (SELECT MAX(last_seq) FROM checkpoints)",
        (anchor[0],),
    ).fetchall()
    gone = [(row[0],) for row in rows if row[0] in sent]
    conn.executemany("DELETE FROM checkpoints WHERE checkpoint_id = ?", gone)
    return len(gone)


def status(conn: sqlite3.Connection) -> CheckpointStatus:
    """On the journal's reader connection (delivery's database attached)."""
    last = conn.execute("SELECT MAX(last_seq) FROM checkpoints").fetchone()[0]
    pending = conn.execute(
        f"SELECT COUNT(*) FROM checkpoints WHERE {_UNSENT}"  # noqa: S608 - constant
    ).fetchone()[0]
    newest = conn.execute("SELECT MAX(seq) FROM records").fetchone()[0]
    uncovered = max(int(newest or 0) - covered_through(conn)[0], 0)
    return CheckpointStatus(None if last is None else int(last), int(pending), uncovered)


@dataclass(frozen=True)
class CheckpointProblem:
    """A stored checkpoint that disagrees with the chain or with the checkpoint before it."""

    seq: int
    detail: str


def check_all(conn: sqlite3.Connection) -> tuple[int, list[CheckpointProblem]]:
    """Check every stored checkpoint: contiguous with the one before it, and its chain values
    equal to the journal's at both ends wherever the journal still holds them. Returns how
    many were checked and the problems found."""
    problems: list[CheckpointProblem] = []
    previous: Checkpoint | None = None
    checked = 0
    rows = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints ORDER BY first_seq").fetchall()  # noqa: S608
    for checkpoint in map(_checkpoint, rows):
        checked += 1
        first, last = checkpoint.first_seq, checkpoint.last_seq
        if previous is not None and (
            first != previous.last_seq + 1 or checkpoint.chain_before != previous.chain
        ):
            problems.append(
                CheckpointProblem(
                    first,
                    f"checkpoint {first}..{last} does not continue the one ending at "
                    f"{previous.last_seq}",
                )
            )
        for seq, expected, end in (
            (first - 1, checkpoint.chain_before, "start"),
            (last, checkpoint.chain, "end"),
        ):
            actual = chain_at(conn, seq)
            if actual is not None and actual.hex() != expected:
                problems.append(
                    CheckpointProblem(
                        seq,
                        f"checkpoint {first}..{last}: the chain at its {end} (seq {seq}) is not "
                        "the one it recorded: a record or the checkpoint was altered",
                    )
                )
        previous = checkpoint
    return checked, problems
