"""The journal's database: its connections, the lock, transactions, and its identity.

Every journal write runs on the writer connection in one IMMEDIATE transaction under `lock`
(`write`); delivery's writes run on delivery's own database (`outcomes.py`) the same way
(`write_delivery`), a file whose lock the journal's appends never take. Reads run on their
own reader connection, with delivery's database attached to it as `delivery` (WAL readers never
wait for a writer, and SQLite lets go of the GIL while it steps), so that a payment's append
does not queue behind one under `lock`. Writers from other processes (the CLI) coordinate
through SQLite's locks and `busy_timeout`.

One `Database` is the state the journal's parts share (append, lease and settle, salvage,
counts, retention): each is handed it explicitly.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from posd.errors import JournalError, SchemaError
from posd.journal import outcomes
from posd.journal.files import JOURNAL_FILE, prepare_state_file
from posd.journal.identity import IdentityFile, refuse_blank, stored_journal_id
from posd.journal.priority import CapturePriority
from posd.journal.schema import SCHEMA_VERSION, migrate, schema_version

BUSY_TIMEOUT_MS = 5_000
# How often a prompt write (a payment's append) tries again for the write lock another process
# holds. SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between its tries, so
# an append arriving just after delivery began a short transaction waited 1 ms, 3 ms, 8 ms,
# 18 ms... after it ended (bench/capture_api.py measured p99 20 ms, worst 104 ms, draining).
PROMPT_BUSY_POLL_SECONDS = 0.0002
NO_BUSY_WAIT = "PRAGMA busy_timeout=0"
BUSY_WAIT = f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"
PRIMARY_CODE_MASK = 0xFF  # an extended result code (SQLITE_BUSY_RECOVERY...) to its primary
DURABLE_SYNCHRONOUS = "PRAGMA synchronous=FULL"
BOOKKEEPING_SYNCHRONOUS = "PRAGMA synchronous=NORMAL"
SYNCHRONOUS_NAMES = {0: "off", 1: "normal", 2: "full", 3: "extra"}

UNKNOWN_JOURNAL = outcomes.UNKNOWN_JOURNAL

log = structlog.get_logger("posd.journal")


@dataclass(frozen=True)
class Inspection:
    """What tests and benchmarks reach into, on purpose (production code never does): the
    writer connection (to trace its statements, plan them with EXPLAIN QUERY PLAN, or set up
    a benchmark), the reader connection summaries run on, and the lock every write
    transaction (an append, a lease, a settlement) holds."""

    writer: sqlite3.Connection
    reader: sqlite3.Connection
    lock: threading.RLock
    delivery: sqlite3.Connection | None  # delivery's own database (`outcomes.py`)


class Database:
    """The journal file at `path`, open on a writer and a reader connection.

    With an `identity` (the state dir had a journal), a database without a schema is refused
    instead of being made anew. `identity` is set later by `Journal.open` once checked."""

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool,
        identity: IdentityFile | None,
        priority: CapturePriority,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.priority = priority
        self.lock = threading.RLock()
        self.read_lock = threading.Lock()
        self.delivery_path = outcomes.path_of(path.parent)
        self.outcomes: sqlite3.Connection | None = None
        if not read_only:
            prepare_state_file(path)
        # The writer's busy_timeout: SQLite's wait (BUSY_WAIT) unless a payment's append last
        # set it to 0 for its own polling (`begin_prompt`); `writer` restores it.
        self._busy_waits = True
        try:
            self._writer = connect(path, read_only)
            if read_only:
                self._check_schema_read_only()
            else:
                if identity is not None and schema_version(self._writer) == 0:
                    self._writer.close()
                    raise refuse_blank(path.parent, identity)
                self._configure()
                migrate(self.writer, str(path))
            journal_id = stored_journal_id(self.writer) or UNKNOWN_JOURNAL
            if not read_only:
                self.outcomes = self._open_outcomes(journal_id)
            self.reader = connect(path, read_only)
            outcomes.attach(
                self.reader, self.delivery_path, read_only=read_only, journal_id=journal_id
            )
            self.reader.execute("PRAGMA query_only=ON")
        except sqlite3.DatabaseError as error:
            raise JournalError(f"{path}: cannot open journal: {error}") from error
        self.identity = identity

    def _open_outcomes(self, journal_id: str) -> sqlite3.Connection:
        """Delivery's database (`outcomes.py`), made if missing; one that belongs to another
        journal (the journal was reset since) is set aside and made anew."""
        path = self.delivery_path
        prepare_state_file(path)
        conn = connect(path, read_only=False)
        _configure_wal(conn, path)
        outcomes.check_version(conn, path)
        outcomes.create(conn, self.path, journal_id)
        owner = outcomes.journal_id_of(conn)
        if owner == journal_id:
            return conn
        if owner == UNKNOWN_JOURNAL:  # made before the journal had its identity
            outcomes.adopt(conn, journal_id)
            return conn
        conn.close()
        aside = outcomes.set_aside(path)
        log.warning("journal.delivery_db_set_aside", path=str(aside), belonged_to=owner)
        return self._open_outcomes(journal_id)

    def _check_schema_read_only(self) -> None:
        version = schema_version(self.writer)
        if version == 0:
            known = IdentityFile.load(self.path.parent)
            if known is not None:
                raise refuse_blank(self.path.parent, known)
            raise JournalError(f"{self.path}: not a posd journal (no schema)")
        if version != SCHEMA_VERSION:
            raise SchemaError(
                f"{self.path}: journal schema version {version}, this posd reads "
                f"{SCHEMA_VERSION}; open it with a matching posd"
            )

    @property
    def writer(self) -> sqlite3.Connection:
        """The writer connection, waiting for SQLite's locks as every connection here does.
        Call under `lock` (outside it only before other threads use the journal)."""
        if not self._busy_waits:
            self._writer.execute(BUSY_WAIT)
            self._busy_waits = True
        return self._writer

    def _configure(self) -> None:
        _configure_wal(self.writer, self.path)
        self.writer.execute("PRAGMA foreign_keys=ON")

    def journal_id(self) -> str:
        if self.identity is not None:
            return self.identity.identity.journal_id
        with self.lock:
            return stored_journal_id(self.writer) or "unknown"

    def issued_through(self) -> int | None:
        """The highest seq this journal ever issued, as its identity file knows it."""
        return self.identity.identity.high_water_seq if self.identity else None

    def durability(self) -> dict[str, Any]:
        with self.lock:
            conn = self.writer
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
            secure_delete = bool(conn.execute("PRAGMA secure_delete").fetchone()[0])
        return {
            "journal_mode": mode,
            "synchronous": SYNCHRONOUS_NAMES.get(synchronous, str(synchronous)),
            "secure_delete": secure_delete,
        }

    def inspection(self) -> Inspection:
        return Inspection(self.writer, self.reader, self.lock, self.outcomes)

    def adopt_journal_id(self) -> None:
        """Record in delivery's database the identity a new journal was just given."""
        journal_id = stored_journal_id(self.writer)
        if self.outcomes is not None and journal_id is not None:
            outcomes.adopt(self.outcomes, journal_id)

    def delivery_connection(self) -> sqlite3.Connection:
        """Delivery's database's own connection (writable opens only)."""
        if self.outcomes is None:
            raise JournalError(f"{self.delivery_path}: opened read-only")
        return self.outcomes

    def delivery_version(self) -> int:
        """`PRAGMA data_version` of delivery's database: it changes when another connection
        (another process: the CLI's retry) committed to it."""
        return int(self.delivery_connection().execute("PRAGMA data_version").fetchone()[0])

    def write_delivery(
        self,
        body: Callable[[sqlite3.Connection], Any],
        on_commit: Callable[[Any], None] | None = None,
        *,
        durable: bool = False,
    ) -> Any:
        """`write` on delivery's own database (`outcomes.py`): its write lock is not the
        journal's, so neither capture priority nor a payment's append is involved. Durable or
        not as in `write` (bookkeeping by default)."""
        conn = self.delivery_connection()
        with self.lock:
            if durable:
                conn.execute(DURABLE_SYNCHRONOUS)
            try:
                return self._transaction(conn, body, on_commit, yielding=False)
            finally:
                if durable:
                    conn.execute(BOOKKEEPING_SYNCHRONOUS)

    def write(
        self,
        body: Callable[[sqlite3.Connection], Any],
        on_commit: Callable[[Any], None] | None = None,
        *,
        durable: bool = True,
    ) -> Any:
        """Run `body` in one IMMEDIATE transaction (takes the write lock up front).

        `on_commit(result)` updates in-memory caches after the commit, still under the lock,
        so no other thread sees the file and the caches disagree. `durable=False` is for
        delivery bookkeeping only: no fsync at commit (see `posd.journal.store`). A payment's
        append runs its own transaction (`begin_prompt`).
        """
        with self.lock:
            conn = self.writer
            if not durable:
                conn.execute(BOOKKEEPING_SYNCHRONOUS)
            try:
                return self._transaction(conn, body, on_commit)
            finally:
                if not durable:
                    conn.execute(DURABLE_SYNCHRONOUS)

    def begin_prompt(self) -> sqlite3.Connection:
        """A payment's append (`Appender`): under `lock`, BEGIN IMMEDIATE on the writer, and
        while another process holds the write lock try again every
        `PROMPT_BUSY_POLL_SECONDS` rather than on SQLite's backoff. The caller commits or
        rolls back. The writer's busy_timeout is left at 0 after the append (the next append
        needs it again; anything else takes `writer`): two PRAGMA statements fewer on each
        payment's path."""
        conn = self._writer
        if self._busy_waits:
            conn.execute(NO_BUSY_WAIT)
            self._busy_waits = False
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")  # the first try, without a call: mostly the last
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & PRIMARY_CODE_MASK != sqlite3.SQLITE_BUSY:
                    raise
                _begin_promptly(conn)
        except sqlite3.OperationalError as error:
            raise JournalError(f"{self.path}: journal is busy: {error}") from error
        return conn

    def _transaction(
        self,
        conn: sqlite3.Connection,
        body: Callable[[sqlite3.Connection], Any],
        on_commit: Callable[[Any], None] | None,
        yielding: bool = True,
    ) -> Any:
        try:
            if yielding:
                self._begin_after_capture(conn)
            else:
                conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise JournalError(f"{self.path}: journal is busy: {error}") from error
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if on_commit is not None:
            on_commit(result)
        return result

    def _begin_after_capture(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, given back at once while another process's payment holds capture
        priority (published after this writer last looked: priority.py), and taken again
        once the hold is over: the payment's append never waits on this transaction."""
        while True:
            conn.execute("BEGIN IMMEDIATE")
            if not self.priority.held_elsewhere():
                return
            conn.execute("ROLLBACK")
            self.priority.wait_elsewhere()


def _begin_promptly(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE on a connection that does not wait (`Database.begin_prompt`),
    polling for the write lock for up to `BUSY_TIMEOUT_MS`; raises `sqlite3.OperationalError`
    (database is locked) past that, as SQLite's own wait does."""
    deadline = 0.0
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & PRIMARY_CODE_MASK != sqlite3.SQLITE_BUSY:
                raise
            now = time.monotonic()
            deadline = deadline or now + BUSY_TIMEOUT_MS / 1000
            if now > deadline:
                raise
        time.sleep(PROMPT_BUSY_POLL_SECONDS)


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """A connection to `path` (URI filenames on: `outcomes.attach` attaches by URI)."""
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}{'?mode=ro' if read_only else ''}",
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
        uri=True,
    )
    conn.row_factory = sqlite3.Row
    return conn


def _configure_wal(conn: sqlite3.Connection, path: Path) -> None:
    """WAL, `secure_delete` (what is erased is overwritten) and the busy wait; the journal
    commits with `synchronous=FULL`, delivery's database with NORMAL (bookkeeping, see
    `posd.journal.store`) unless a write asks to be durable."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise JournalError(f"{path}: cannot switch to WAL mode")
    conn.execute(DURABLE_SYNCHRONOUS if path.name == JOURNAL_FILE else BOOKKEEPING_SYNCHRONOUS)
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute(BUSY_WAIT)
