"""Reads for the daemon and tools: a record by its `client_ref` (a payment's idempotency),
every record still holding its payload in seq order, the checkpoint status, and `verify`.

Each reads on the writer connection under `Database.lock` (a batch of records at a time).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

from posd.journal import checkpoints
from posd.journal.database import Database
from posd.journal.identity import IdentityFile
from posd.journal.rows import RecordState, outbox_record, select_records
from posd.journal.verify import VerifyReport, verify_journal
from sync.outbox import OutboxRecord


def find_by_client_ref(db: Database, client_ref: str) -> OutboxRecord | None:
    with db.read_lock:
        row = db.reader.execute(
            select_records("WHERE r.client_ref = ?"),
            (client_ref,),
        ).fetchone()
    return None if row is None or row["state"] == RecordState.PURGED else outbox_record(row)


def records(db: Database, after_seq: int, batch: int) -> Iterator[OutboxRecord]:
    """Every record still holding its payload after `after_seq`, in seq order (read-only)."""
    while True:
        with db.read_lock:
            rows = db.reader.execute(
                select_records("WHERE r.seq > ? AND r.state != 'purged' ORDER BY r.seq LIMIT ?"),
                (after_seq, batch),
            ).fetchall()
        if not rows:
            return
        for row in rows:
            yield outbox_record(row)
        after_seq = rows[-1]["seq"]


def checkpoint_status(db: Database) -> checkpoints.CheckpointStatus:
    with db.read_lock:
        try:
            return checkpoints.status(db.reader)
        except sqlite3.DatabaseError:
            return checkpoints.CheckpointStatus(None, 0)  # a damaged file: unknown


def verify(db: Database, progress: Callable[[int, int], None] | None) -> VerifyReport:
    """`verify_journal` up to the highest seq ever issued: the open journal's identity, or
    (read-only, as `posd journal verify` opens it) the identity file beside it."""
    with db.read_lock:
        issued = db.issued_through()
        if issued is None and db.read_only:
            known = IdentityFile.load(db.path.parent)
            issued = known.identity.high_water_seq if known else None
        return verify_journal(db.reader, progress, issued_through=issued)
