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
from posd.journal.files import JOURNAL_FILE

STATES = ("pending", "quarantined", "delivered")
# What is stuck is read oldest first; the rest newest first.
OLDEST_FIRST_STATES = frozenset({"pending", "quarantined"})
LISTED_COLUMNS = "seq, kind, captured_at, state, attempts, last_error, delivered_at, meta"


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
    return sqlite_utils.Database(conn)


def _meta(text: str | None) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {"unreadable": True}


def list_records(state_dir: Path, state: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` records, of `state` if given (pending/quarantined oldest first)."""
    db = _open(state_dir)
    try:
        where, params = ("WHERE state = ?", [state]) if state else ("", [])
        order = "ASC" if state in OLDEST_FIRST_STATES else "DESC"
        rows = db.query(
            f"SELECT {LISTED_COLUMNS} FROM records {where} ORDER BY seq {order} LIMIT ?",  # noqa: S608 - fixed fragments
            [*params, limit],
        )
        return [{**row, "meta": _meta(row["meta"])} for row in rows]
    except sqlite3.DatabaseError as error:
        raise JournalError(f"{state_dir / JOURNAL_FILE}: cannot list: {error}") from None
    finally:
        db.close()


def delivery_facts(state_dir: Path, now: float) -> DeliveryFacts:
    """Leased records, the last delivery error and the last successful delivery."""
    db = _open(state_dir)
    try:
        leased = next(
            db.query(
                "SELECT COUNT(*) AS n FROM records WHERE state = 'pending' AND leased_until > ?",
                [now],
            )
        )["n"]
        failed = list(
            db.query(
                "SELECT seq, last_error FROM records WHERE state = 'pending' "
                "AND last_error IS NOT NULL ORDER BY next_attempt_at DESC, seq DESC LIMIT 1"
            )
        )
        delivered = next(db.query("SELECT MAX(delivered_at) AS at FROM records"))["at"]
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
