"""The journal's identity, kept inside the database *and* beside it, so damage is noticed.

A journal is `journal_id` (random, made once) plus the highest seq it ever issued. Both live in
the database (`journal_state`) and in `STATE_DIR/journal.identity`, a small file outside it.
Opening for writing compares the two: a database that was emptied, replaced by another file,
or lost committed records with its WAL is refused with `JournalIdentityError`, never silently
started over (seq numbers reused downstream would be double-counted or lost). A technician
who accepts the loss runs `posd journal reset --accept-loss` (`accept_loss` below): seq goes on
after the highest one ever issued, and the accepted gap is recorded so `verify` knows it.

The identity file is advanced after each append's commit with one `pwrite` (no fsync): a crash
can leave it behind the database, which is fine (the database is ahead), never ahead of it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from posd.errors import JournalError
from posd.journal.files import FILE_MODE, JOURNAL_FILE, SQLITE_SIDE_FILES, set_mode
from posd.journal.files import IDENTITY_FILE as IDENTITY_FILE  # re-exported (defined in files.py)
from posd.journal.permissions import check_access
from posd.journal.rows import ANCHOR_CHAIN, ANCHOR_SEQ, read_anchor
from posd.journal.schema import schema_version
from wire.envelope import GENESIS_CHAIN

JOURNAL_ID = "journal_id"
LOSS_AFTER = "accepted_loss_after"
LOSS_THROUGH = "accepted_loss_through"
SET_ASIDE_SUFFIX = ".set-aside-"
RESET_HINT = "a technician who accepts the loss runs `posd journal reset --accept-loss`"


class JournalIdentityError(JournalError):
    """The journal file is not the one this state dir had: emptied, replaced or truncated."""

    code = "journal_identity"


@dataclass(frozen=True)
class Identity:
    journal_id: str
    high_water_seq: int

    def encode(self) -> bytes:
        return encode_identity(_head(self.journal_id), self.high_water_seq)


def _head(journal_id: str) -> str:
    """The file's text up to its seq (what `json.dumps` writes before the number)."""
    return json.dumps({"journal_id": journal_id, "high_water_seq": 0})[: -len("0}")]


def identity_format(head: str) -> str:
    """The file's text as a %-format of its seq: `head` (`_head` of the journal id), then
    the seq; the append path fills it after each commit (`IdentityFile.advance`)."""
    return head.replace("%", "%%") + "%d}\n"


def encode_identity(head: str, seq: int) -> bytes:
    """The file's bytes for `seq`."""
    return (identity_format(head) % seq).encode()


class IdentityFile:
    """`STATE_DIR/journal.identity`: the journal's id and the highest seq ever issued."""

    def __init__(self, path: Path, identity: Identity) -> None:
        self.path = path
        self._journal_id = identity.journal_id
        self._high_water = identity.high_water_seq
        self._fd: int | None = None
        self._format = identity_format(_head(identity.journal_id))

    @property
    def identity(self) -> Identity:
        """What the file says now (made when asked: `advance` keeps the seq as an int)."""
        return Identity(self._journal_id, self._high_water)

    @classmethod
    def load(cls, state_dir: Path) -> IdentityFile | None:
        path = state_dir / IDENTITY_FILE
        try:
            document = json.loads(path.read_bytes())
            identity = Identity(str(document["journal_id"]), int(document["high_water_seq"]))
        except FileNotFoundError:
            return None
        except PermissionError:
            check_access(state_dir)  # names the file, its owner and the chown that fixes it
            raise
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise JournalIdentityError(
                f"{path} is unreadable ({type(error).__name__}); the journal's identity cannot "
                f"be checked: {RESET_HINT}"
            ) from None
        return cls(path, identity)

    @classmethod
    def create(cls, state_dir: Path, identity: Identity) -> IdentityFile:
        """Write the file durably (temp file, fsync, rename, fsync of the directory)."""
        path = state_dir / IDENTITY_FILE
        temporary = path.with_suffix(".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                set_mode(fd, FILE_MODE)  # both daemons' users write it
                os.write(fd, identity.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, path)
            directory = os.open(state_dir, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as error:
            raise JournalError(f"cannot write {path}: {error.strerror}") from error
        return cls(path, identity)

    def advance(self, seq: int) -> None:
        """Remember that `seq` was issued (after its commit). Seqs only grow, so the text only
        grows too and one write at offset 0 replaces it whole."""
        if seq <= self._high_water:
            return
        self._high_water = seq
        try:
            fd = self._fd
            if fd is None:
                fd = self._fd = os.open(self.path, os.O_WRONLY)
            os.pwrite(fd, (self._format % seq).encode(), 0)  # `encode_identity`, no call
        except OSError as error:
            raise JournalError(f"cannot update {self.path}: {error.strerror}") from error

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _state(conn: sqlite3.Connection, name: str) -> bytes | None:
    row = conn.execute("SELECT value FROM journal_state WHERE name = ?", (name,)).fetchone()
    return None if row is None else bytes(row[0])


def _set_state(conn: sqlite3.Connection, values: dict[str, bytes]) -> None:
    conn.executemany("INSERT OR REPLACE INTO journal_state VALUES (?, ?)", list(values.items()))


def stored_journal_id(conn: sqlite3.Connection) -> str | None:
    value = _state(conn, JOURNAL_ID)
    return None if value is None else value.decode("ascii", "replace")


def readable_journal_id(path: Path) -> str | None:
    """The journal id stored in the database at `path`, if it can be read at all."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if schema_version(conn) == 0:
                return None
            return stored_journal_id(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None


def accepted_gap(conn: sqlite3.Connection) -> tuple[int, int] | None:
    """(after, through): seqs after..through were lost and a technician accepted it."""
    after, through = _state(conn, LOSS_AFTER), _state(conn, LOSS_THROUGH)
    if after is None or through is None:
        return None
    return int(after), int(through)


def last_seq(conn: sqlite3.Connection) -> int:
    """The highest seq the database knows: its last row, the purge anchor or an accepted gap."""
    row = conn.execute("SELECT MAX(seq) FROM records").fetchone()
    anchor = read_anchor(conn)
    gap = accepted_gap(conn)
    return max(row[0] or 0, anchor[0] if anchor else 0, gap[1] if gap else 0)


def chain_at(conn: sqlite3.Connection, seq: int) -> bytes | None:
    """The chain value after record `seq`: its row, the anchor, or genesis before record 1."""
    row = conn.execute("SELECT chain FROM records WHERE seq = ?", (seq,)).fetchone()
    if row is not None:
        return bytes(row[0])
    anchor = read_anchor(conn)
    if anchor is not None and anchor[0] == seq:
        return anchor[1]
    if anchor is None and seq == 0:
        return GENESIS_CHAIN
    return None


def establish(
    conn: sqlite3.Connection, state_dir: Path, sidecar: IdentityFile | None
) -> IdentityFile:
    """Check the database against the identity file (making both on first use).

    Call inside no transaction, after migrations. Raises `JournalIdentityError` when they
    disagree.
    """
    journal_id = stored_journal_id(conn)
    known_seq = last_seq(conn)
    if sidecar is None:
        if journal_id is None:
            journal_id = str(uuid.uuid4())
            _set_state(conn, {JOURNAL_ID: journal_id.encode()})
        return IdentityFile.create(state_dir, Identity(journal_id, known_seq))
    expected = sidecar.identity
    if journal_id != expected.journal_id:
        raise JournalIdentityError(
            f"{state_dir / JOURNAL_FILE} is not this terminal's journal {expected.journal_id} "
            f"(it holds {journal_id or 'no identity'}): it was replaced; {RESET_HINT}"
        )
    if known_seq < expected.high_water_seq:
        raise JournalIdentityError(
            f"journal {expected.journal_id} ends at seq {known_seq} but seq "
            f"{expected.high_water_seq} was issued: records {known_seq + 1}.."
            f"{expected.high_water_seq} were committed and are gone (a lost or truncated "
            f"WAL?); {RESET_HINT}"
        )
    return sidecar


def refuse_blank(state_dir: Path, sidecar: IdentityFile) -> JournalIdentityError:
    """The error for a database with no schema where a journal used to be."""
    identity = sidecar.identity
    return JournalIdentityError(
        f"{state_dir / JOURNAL_FILE} is empty but journal {identity.journal_id} had issued seq "
        f"up to {identity.high_water_seq}: it was emptied or replaced; {RESET_HINT}"
    )


@dataclass(frozen=True)
class AcceptedLoss:
    """What `accept_loss` did: the journal id now, and the seq range given up, if any."""

    action: str  # "none", "new_journal", "gap_accepted", "damaged_set_aside"
    journal_id: str
    lost_after: int | None
    lost_through: int | None
    set_aside: str | None
    unreadable: int | None = None  # a damaged file set aside: rows it could not read
    quarantined: int | None = None  # and quarantined records given up with it (kept there)


def set_aside(state_dir: Path) -> Path:
    """Move the journal's files out of the way (kept, never deleted) and return the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = state_dir / f"{JOURNAL_FILE}{SET_ASIDE_SUFFIX}{stamp}"
    for suffix in ("", *SQLITE_SIDE_FILES):
        source = state_dir / f"{JOURNAL_FILE}{suffix}"
        if source.exists():
            os.replace(source, f"{target}{suffix}")
    return target


def start_new_journal(conn: sqlite3.Connection, after_seq: int) -> str:
    """Give a fresh, migrated database a new identity that starts after `after_seq`."""
    journal_id = str(uuid.uuid4())
    conn.execute("BEGIN IMMEDIATE")
    values = {JOURNAL_ID: journal_id.encode()}
    if after_seq > 0:
        values.update({ANCHOR_SEQ: str(after_seq).encode(), ANCHOR_CHAIN: GENESIS_CHAIN})
    _set_state(conn, values)
    conn.execute("COMMIT")
    return journal_id


def accept_gap(conn: sqlite3.Connection, after: int, through: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    _set_state(conn, {LOSS_AFTER: str(after).encode(), LOSS_THROUGH: str(through).encode()})
    conn.execute("COMMIT")
