"""A damaged page (bit rot, a failing disk): what can be done about it, and the reset that ends
it.

posd works around a damaged page (`salvage.py`): it delivers every record it can read and
counts the rest `unreadable`. Those rows are gone; nothing posd does brings them back. What is
left to do is to deliver the rest and then leave the damaged file behind: `posd journal reset
--accept-loss` sets it aside (kept, never deleted) and starts a new journal after the last seq
ever issued, once no readable record is still pending (it refuses before, saying so).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from posd.errors import JournalError
from sync.outbox import OutboxSummary

QUICK_CHECK_OK = "ok"
DAMAGED_PAGE_ADVICE = (
    "posd journal verify names the records that cannot be read (they are lost); deliver the "
    "rest (the delivery daemon, posd-sync, does; or with both stopped, posd sync flush) "
    "until posd sync status shows 0 pending; then, with both daemons stopped (systemctl stop "
    "posd.target), posd journal reset --accept-loss sets the damaged file aside and starts a "
    "new journal after the last seq"
)


def quick_check(conn: sqlite3.Connection) -> str:
    """SQLite's `PRAGMA quick_check`: "ok", or its first complaint."""
    try:
        return str(conn.execute("PRAGMA quick_check").fetchone()[0])
    except sqlite3.DatabaseError as error:
        return str(error)


@dataclass(frozen=True)
class DamagedPage:
    """What an open journal with a damaged page still holds: `check` is quick_check's
    complaint ("ok" when only rows cannot be read), `retriable` the quarantined records a
    retry would deliver."""

    check: str
    unreadable: int
    pending: int
    quarantined: int
    retriable: int

    def still_deliverable(self, path: Path) -> JournalError | None:
        """Why the file must not be set aside yet (records in it can still be delivered)."""
        if not (self.pending or self.retriable):
            return None
        waiting = []
        if self.pending:
            waiting.append(
                f"{self.pending} readable record(s) are still pending: start posd (or run "
                "posd sync flush) to deliver them, then stop it"
            )
        if self.retriable:
            waiting.append(
                f"{self.retriable} quarantined record(s) can still be delivered: posd sync "
                "retry-quarantined, then deliver them"
            )
        return JournalError(
            f"{path} has a damaged page ({self.unreadable} record(s) cannot be read and are "
            f"lost) but records in it can still be delivered: {'; '.join(waiting)}; then run "
            "posd journal reset --accept-loss again to set the damaged file aside"
        )


def assess(conn: sqlite3.Connection, summary: OutboxSummary, retriable: int) -> DamagedPage | None:
    """The damage of an open journal (None for a sound file). Call under `Database.lock`."""
    check = quick_check(conn)
    if check == QUICK_CHECK_OK and not summary.unreadable:
        return None
    return DamagedPage(check, summary.unreadable, summary.pending, summary.quarantined, retriable)
