"""Retention: erase delivered records once they are old enough, in short chunks, and drop the
data keys no remaining record can use.

Payloads are erased at once (`secure_delete` overwrites them); the rows themselves go only
from the front of the journal, leaving the chain value of the last one removed as the anchor
that verification starts from. A purged row behind a pending or quarantined one stays as a
payload-less link until the front catches up. The sync engine bounds a purge by seq too: with
acknowledged retention it erases nothing above what the cloud has proven (sync/acknowledgement.py).
"""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
import time
from collections.abc import Sequence

import structlog

from posd.journal import checkpoints
from posd.journal.database import Database
from posd.journal.outcomes import ALIAS
from posd.journal.rows import ANCHOR_CHAIN, ANCHOR_SEQ

# Purge erases at most this many seqs per transaction: a few ms of lock (bench/cost_growth.py).
PURGE_CHUNK_ROWS = 500
PURGE_PAUSE_SECONDS = 0.001  # between chunks: a capture waiting for the lock gets it
_NO_SEQ = 2**63 - 1  # above every seq: with no row left, every closed key is spent

log = structlog.get_logger("posd.journal")


@dataclasses.dataclass(frozen=True)
class _PurgeStep:
    erased: int
    through: int  # the last seq this step looked at
    done: bool


def purge_in_chunks(
    db: Database,
    delivered_before: float,
    chunk_rows: int,
    through_seq: int | None = None,
) -> int:
    """Erase delivered records older than `delivered_before` (and, with `through_seq`, at or
    below that seq: what the cloud has proven). Returns how many were erased.

    The work is done in chunks of `chunk_rows` seqs, each its own short transaction,
    with the lock released between them so that captures interleave: the lock is never held
    for long, whatever the journal holds. The walk goes forward from the front and stops at
    the first record delivered within retention, so it costs what it purges (plus the
    backlog it steps over), not the journal. A record delivered late therefore holds the
    ones after it until it too is old enough: purge may come later, never earlier. The walk
    ends at `through_seq` too: the records after it are not looked at.

    What was delivered, and when, is delivery's database's (`outcomes.py`); the erasing is
    the journal's. Each chunk reads the first, erases in the second, then forgets the
    outcomes of what it erased. A stop between the two leaves outcomes of erased records,
    which the next purge forgets first (`_forget_outcomes_behind`).
    """
    erased = 0
    try:
        with db.read_lock:
            after = _front(db.reader) - 1
        _forget_outcomes_behind(db, after + 1)
        bound = _NO_SEQ if through_seq is None else through_seq
        while True:
            seqs, through, young = _purgeable(db, after, delivered_before, chunk_rows, bound)
            if seqs:
                step = _erase(db, seqs, through, young, bound, chunk_rows)
                erased += step.erased
            else:  # nothing to erase here: the journal is not written at all
                step = _PurgeStep(0, through, young or _walked_past(db, through, bound))
            if step.done:
                break
            after = step.through
            if seqs:
                time.sleep(PURGE_PAUSE_SECONDS)  # hand the lock to a waiting capture
    except sqlite3.DatabaseError as error:
        # A damaged journal keeps what it holds until a technician repairs or resets it.
        log.error("journal.purge_failed", error=str(error))
        return erased
    if erased:
        _drop_spent_keys(db)
    return erased


def _erase(
    db: Database, seqs: Sequence[int], through: int, young: bool, bound: int, rows: int
) -> _PurgeStep:
    """Erase `seqs` in the journal (after a payment in progress), then forget their outcomes
    in delivery's database."""
    db.priority.yield_to_capture()
    step: _PurgeStep = db.write(
        functools.partial(
            _purge_chunk,
            seqs=seqs,
            through=through,
            young=young,
            bound=bound,
            rows=rows,
            sent=_sent_checkpoints(db),
        )
    )
    db.write_delivery(functools.partial(_forget_outcomes, seqs=seqs))
    return step


def _walked_past(db: Database, through: int, bound: int) -> bool:
    with db.read_lock:
        tail = db.reader.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()[0]
    return through >= min(int(tail), bound)


def _purgeable(
    db: Database, after: int, before: float, rows: int, bound: int
) -> tuple[list[int], int, bool]:
    """The delivered seqs after `after` old enough to erase (at most `rows` seqs on, up to
    the first record delivered within retention and no further than `bound`), the last seq
    looked at, and whether a young one stopped the walk."""
    through = min(after + rows, bound)
    if through <= after:
        return [], after, False
    with db.read_lock:
        delivered = db.reader.execute(
            f"SELECT seq, delivered_at FROM {ALIAS}.outcomes WHERE seq > ? AND seq <= ? "  # noqa: S608
            "AND state = 'delivered' ORDER BY seq",
            (after, through),
        ).fetchall()
    seqs: list[int] = []
    for seq, delivered_at in delivered:
        if delivered_at is None or delivered_at >= before:
            return seqs, int(seq) - 1, True
        seqs.append(int(seq))
    return seqs, through, False


def _sent_checkpoints(db: Database) -> frozenset[int]:
    with db.lock:
        rows = db.delivery_connection().execute(checkpoints.SENT_IDS).fetchall()
    return frozenset(int(row[0]) for row in rows)


def _forget_outcomes(conn: sqlite3.Connection, seqs: Sequence[int]) -> int:
    """The outcomes of erased records: their state is the journal's now (`purged`)."""
    return int(
        conn.executemany("DELETE FROM outcomes WHERE seq = ?", [(s,) for s in seqs]).rowcount
    )


def _forget_outcomes_behind(db: Database, front: int) -> None:
    """Outcomes of delivered records the journal no longer holds (a purge stopped between
    erasing them and forgetting their outcomes)."""
    db.write_delivery(
        lambda conn: conn.execute(
            "DELETE FROM outcomes WHERE seq < ? AND state = 'delivered'", (front,)
        )
    )


def _drop_spent_keys(db: Database) -> None:
    """Delete the data keys whose `last_seq` is behind the front: no row can use them.

    Foreign keys are off for this one statement: SQLite checks a deleted parent key by
    scanning `records` (no index on `data_key_id`, on purpose: one more page per append),
    a scan of the whole journal per key; `last_seq`, kept in the same transactions as the
    appends, already proves that no row refers to these keys (schema v5)."""
    with db.lock:
        conn = db.writer
        conn.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: before it
        try:
            db.write(
                lambda c: c.execute(
                    "DELETE FROM data_keys "
                    "WHERE last_seq < (SELECT COALESCE(MIN(seq), ?) FROM records)",
                    (_NO_SEQ,),
                )
            )
        except sqlite3.DatabaseError as error:
            log.error("journal.purge_failed", error=str(error))
        finally:
            conn.execute("PRAGMA foreign_keys=ON")


def _front(conn: sqlite3.Connection) -> int:
    """The first seq still in the file (one past the last, if it holds none)."""
    # One aggregate a query: MIN and MAX together would scan an index instead of seeking.
    first = conn.execute("SELECT MIN(seq) FROM records").fetchone()[0]
    if first is not None:
        return int(first)
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()[0]) + 1


def _purge_chunk(
    conn: sqlite3.Connection,
    *,
    seqs: Sequence[int],
    through: int,
    young: bool,
    bound: int,
    rows: int,
    sent: frozenset[int],
) -> _PurgeStep:
    """One bounded step of `purge_in_chunks`: erase the payloads of `seqs` (delivered long
    enough ago, read from delivery's database by `_purgeable`), then move the front past the
    purged rows it leads with. Seq ranges walk the primary key: no statement here scans the
    table."""
    marks = ",".join("?" * len(seqs))
    erased = (
        conn.execute(
            "UPDATE records SET state = 'purged', nonce = NULL, ciphertext = NULL, "  # noqa: S608
            f"client_ref = NULL WHERE seq IN ({marks}) AND state != 'purged'",
            seqs,
        ).rowcount
        if seqs
        else 0
    )
    _advance_front(conn, rows, sent)
    tail = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()[0]
    done = young or through >= min(int(tail), bound)
    return _PurgeStep(int(erased), through, done)


def _advance_front(conn: sqlite3.Connection, rows: int, sent: frozenset[int]) -> None:
    """Delete the purged rows the journal starts with (at most a chunk of them) and keep the
    chain value of the last one as the anchor."""
    front = _front(conn)
    live = conn.execute(
        "SELECT seq FROM records WHERE seq >= ? AND seq < ? AND state != 'purged' "
        "ORDER BY seq LIMIT 1",
        (front, front + rows),
    ).fetchone()
    bound = int(live[0]) if live is not None else front + rows
    last = conn.execute(
        "SELECT seq, chain FROM records WHERE seq < ? ORDER BY seq DESC LIMIT 1", (bound,)
    ).fetchone()
    if last is None:
        return
    conn.execute(
        "INSERT OR REPLACE INTO journal_state VALUES (?, ?), (?, ?)",
        (ANCHOR_SEQ, str(last[0]).encode(), ANCHOR_CHAIN, bytes(last[1])),
    )
    conn.execute("DELETE FROM records WHERE seq <= ?", (last[0],))
    checkpoints.forget_sent(conn, sent)
