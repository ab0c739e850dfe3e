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

import structlog

from posd.journal import checkpoints
from posd.journal.counts import Counts
from posd.journal.database import Database
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
    counts: Counts,
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
    """

    def purged(step: _PurgeStep) -> None:
        counts.count_delivered(-step.erased)  # purging takes delivered records only

    erased = 0
    try:
        after = db.write(_front) - 1
        while True:
            db.priority.yield_to_capture()
            step: _PurgeStep = db.write(
                functools.partial(
                    _purge_chunk,
                    after=after,
                    before=delivered_before,
                    rows=chunk_rows,
                    bound=_NO_SEQ if through_seq is None else through_seq,
                ),
                purged,
            )
            erased += step.erased
            if step.done:
                break
            after = step.through
            time.sleep(PURGE_PAUSE_SECONDS)  # hand the lock to a waiting capture
    except sqlite3.DatabaseError as error:
        # A damaged journal keeps what it holds until a technician repairs or resets it.
        log.error("journal.purge_failed", error=str(error))
        return erased
    _drop_spent_keys(db)
    return erased


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
    conn: sqlite3.Connection, *, after: int, before: float, rows: int, bound: int
) -> _PurgeStep:
    """One bounded step of `purge_in_chunks`: erase the payloads of the seqs after `after`
    delivered before `before` (at most `rows` seqs, up to the first record delivered within
    retention and no further than `bound`), then move the front past the purged rows it
    leads with. Seq ranges walk the primary key: no statement here scans the table."""
    through = min(after + rows, bound)
    if through <= after:  # the walk is past the bound already: nothing to look at
        return _PurgeStep(0, after, True)
    young = conn.execute(
        "SELECT MIN(seq) FROM records WHERE seq > ? AND seq <= ? "
        "AND state = 'delivered' AND delivered_at >= ?",
        (after, through, before),
    ).fetchone()[0]
    if young is not None:
        through = int(young) - 1
    erased = conn.execute(
        "UPDATE records SET state = 'purged', nonce = NULL, ciphertext = NULL, "
        "client_ref = NULL WHERE seq > ? AND seq <= ? "
        "AND state = 'delivered' AND delivered_at < ?",
        (after, through, before),
    ).rowcount
    _advance_front(conn, rows)
    tail = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()[0]
    done = young is not None or through >= min(int(tail), bound)
    return _PurgeStep(int(erased), through, done)


def _advance_front(conn: sqlite3.Connection, rows: int) -> None:
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
    checkpoints.forget_sent(conn)
