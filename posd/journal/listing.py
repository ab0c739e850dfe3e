"""Read-only listings of the journal for the technician (`posd journal list`, `sync status`).

Its own read-only connection (never the daemon's `Journal`), clear columns only: seq, kind,
capture time, delivery state, attempts, last error and the clear metadata (at most BIN and last
four of a card). Ciphertext, nonces, chain values and data keys are never selected.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite_utils

from posd.errors import JournalError
from posd.journal import outcomes
from posd.journal.files import JOURNAL_FILE
from posd.journal.identity import stored_journal_id
from posd.journal.outcomes import OUTCOME_JOIN, STATE
from posd.journal.rows import seq_ceiling

STATES = ("pending", "quarantined", "delivered")
# What is stuck is read oldest first; the rest newest first.
OLDEST_FIRST_STATES = frozenset({"pending", "quarantined"})
_LISTED = (
    ("r.seq", "seq"),
    ("r.kind", "kind"),
    ("r.captured_at", "captured_at"),
    (STATE, "state"),
    ("COALESCE(o.attempts, 0)", "attempts"),
    ("o.last_error", "last_error"),
    ("o.delivered_at", "delivered_at"),
    ("r.meta", "meta"),
)
LISTED_NAMES = tuple(name for _, name in _LISTED)
# The journal's columns and delivery's (`outcomes.py`), joined on seq.
LISTED_COLUMNS = ", ".join(f"{expression} AS {name}" for expression, name in _LISTED)
LISTED_FROM = f"records r {OUTCOME_JOIN}"


@dataclass(frozen=True)
class DeliveryFacts:
    leased: int | None  # pending records leased by an engine right now (None: unreadable)
    last_error: str | None  # of the most recently attempted pending record
    last_error_seq: int | None
    last_delivered_at: float | None


def _open(state_dir: Path) -> sqlite_utils.Database:
    path = state_dir / JOURNAL_FILE
    if not path.is_file():
        raise JournalError(f"no journal in {state_dir} (expected {JOURNAL_FILE})")
    import sqlite_utils  # here: a thin CLI command must not pay for it at start-up

    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        journal_id = stored_journal_id(conn) or "unknown"
        outcomes.attach(conn, outcomes.path_of(state_dir), read_only=True, journal_id=journal_id)
    except sqlite3.DatabaseError as error:
        conn.close()
        raise JournalError(f"{path}: cannot read: {error}") from None
    return sqlite_utils.Database(conn)


def _text(value: Any, column: str, damage: list[str]) -> Any:
    """A text column read as bytes (the connection's `text_factory`), decoded; a value that
    is not UTF-8 is noted in `damage` and shown with replacement characters."""
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        damage.append(f"{column} is not valid UTF-8")
        return value.decode(errors="replace")


def _meta(value: Any, damage: list[str]) -> dict[str, Any]:
    """The clear metadata as a JSON object; anything else is noted in `damage` (and `{}`)."""
    if value is None:
        return {}
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            damage.append("metadata is not valid UTF-8")
            return {}
    try:
        meta = json.loads(value)
    except ValueError:
        damage.append("metadata is not valid JSON")
        return {}
    if not isinstance(meta, dict):
        damage.append("metadata is not a JSON object")
        return {}
    return meta


def listed_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as listed: text decoded, metadata parsed, and `damaged` saying what is wrong
    with it (None for a sound row): a damaged row is shown as such, never a crash."""
    damage: list[str] = []
    shown = {name: _text(value, name, damage) for name, value in row.items() if name != "meta"}
    shown["meta"] = _meta(row.get("meta"), damage)
    shown["damaged"] = "; ".join(damage) or None
    return shown


def unreadable_row(seq: int, error: str) -> dict[str, Any]:
    """A row on a damaged page: only its seq is known."""
    listed: dict[str, Any] = dict.fromkeys(LISTED_NAMES)
    listed.update(seq=seq, state="unreadable", meta={}, damaged=f"row cannot be read: {error}")
    return listed


def list_records(state_dir: Path, state: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` records, of `state` if given (pending/quarantined oldest first). Damaged
    rows are listed with `damaged` set; on a damaged page, rows are read one by one and those
    that cannot be read are listed as `unreadable` (unless another state was asked for)."""
    db = _open(state_dir)
    db.conn.text_factory = bytes  # undecodable text is shown as damaged, not a failed query
    where, params = (f"WHERE {STATE} = ?", [state]) if state else ("", [])
    order = "ASC" if state in OLDEST_FIRST_STATES else "DESC"
    try:
        try:
            rows = db.query(
                f"SELECT {LISTED_COLUMNS} FROM {LISTED_FROM} {where} "  # noqa: S608 - fixed fragments
                f"ORDER BY r.seq {order} LIMIT ?",
                [*params, limit],
            )
            return [listed_row(row) for row in rows]
        except sqlite3.DatabaseError:
            return _around_damage(db.conn, state, limit, descending=order == "DESC")
    finally:
        db.close()


def _around_damage(
    conn: sqlite3.Connection, state: str | None, limit: int, *, descending: bool
) -> list[dict[str, Any]]:
    """`list_records` row by row, where a damaged page broke the one query."""
    ceiling = seq_ceiling(conn)
    seqs = range(ceiling, 0, -1) if descending else range(1, ceiling + 1)
    listed: list[dict[str, Any]] = []
    for seq in seqs:
        if len(listed) >= limit:
            break
        try:
            cursor = conn.execute(
                f"SELECT {LISTED_COLUMNS} FROM {LISTED_FROM} WHERE r.seq = ?",  # noqa: S608
                (seq,),
            )
            names = [column[0] for column in cursor.description]
            found = cursor.fetchone()
        except sqlite3.DatabaseError as error:
            if state in (None, "quarantined"):
                listed.append(unreadable_row(seq, str(error)))
            continue
        if found is not None:
            row = listed_row(dict(zip(names, found, strict=True)))
            if state is None or row["state"] == state:
                listed.append(row)
    return listed


def delivery_facts(state_dir: Path, now: float) -> DeliveryFacts:
    """Leased records, the last delivery error and the last successful delivery."""
    db = _open(state_dir)
    try:
        leased = next(
            db.query(
                "SELECT COUNT(*) AS n FROM delivery.outcomes "
                "WHERE state = 'pending' AND leased_until > ?",
                [now],
            )
        )["n"]
        failed = list(
            db.query(
                "SELECT seq, last_error FROM delivery.outcomes WHERE state = 'pending' "
                "AND last_error IS NOT NULL ORDER BY next_attempt_at DESC, seq DESC LIMIT 1"
            )
        )
        delivered = next(db.query("SELECT MAX(delivered_at) AS at FROM delivery.outcomes"))["at"]
    except sqlite3.DatabaseError as error:
        raise JournalError(f"{state_dir / JOURNAL_FILE}: cannot read: {error}") from None
    finally:
        db.close()
    return DeliveryFacts(
        leased=int(leased),
        last_error=failed[0]["last_error"] if failed else None,
        last_error_seq=failed[0]["seq"] if failed else None,
        last_delivered_at=delivered,
    )
