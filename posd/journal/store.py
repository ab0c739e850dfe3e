"""The durable, encrypted, hash-chained journal of captured records (SQLite).

Durability: WAL with `synchronous=FULL`, one transaction per append: when `append` returns,
the record survives a crash or power loss. `secure_delete=ON` overwrites purged card data.
Delivery bookkeeping (leases, delivered marks, retry schedules) commits with
`synchronous=NORMAL`: it survives a crash of the process, and a power cut can only undo the
last few of these commits (the next append's fsync makes them durable too). Undone, a lease
or a delivered mark means the record is sent again with its `event_id`: at least once, as
after any lost answer; nothing captured is ever at stake. It spares the drain an fsync per
round (bench/drain.py).
The journal satisfies `sync.outbox.Outbox`, so the sync engine can lease and settle records
without knowing anything else about it. Writers from other processes (the CLI) coordinate
through SQLite's locks and `busy_timeout`; within a process one `Journal` is thread-safe.

The hot paths (append, lease, settle) are plain `sqlite3` with hand-written SQL: each costs
an fsync already, and the Python around it is a measured share of capture latency
(bench/journal_append.py). sqlite-utils defines the schema (`schema.py`) and answers the
read-only inspection queries (`stats`), where convenience matters more than microseconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from posd.errors import JournalError, JournalFullError, SchemaError, UsageError
from posd.ids import observe, uuid7_str
from posd.journal import checkpoints
from posd.journal.backlog import BacklogBound
from posd.journal.files import (
    JOURNAL_FILE,
    prepare_private_dir,
    prepare_private_file,
    size_on_disk,
)
from posd.journal.identity import (
    AcceptedLoss,
    Identity,
    IdentityFile,
    JournalIdentityError,
    accept_gap,
    accepted_gap,
    chain_at,
    establish,
    last_seq,
    refuse_blank,
    set_aside,
    start_new_journal,
    stored_journal_id,
)
from posd.journal.priority import CapturePriority
from posd.journal.rows import (
    ANCHOR_CHAIN,
    ANCHOR_SEQ,
    MAX_AMOUNT_MINOR,
    MAX_META_BYTES,
    RecordState,
    Unreadable,
    outbox_record,
    pending_amount,
    read_anchor,
    select_records,
    select_records_with_previous,
    seq_ceiling,
    validate_meta,
    walk_rows,
)
from posd.journal.schema import SCHEMA_VERSION, migrate
from posd.journal.settings import JournalSettings
from posd.journal.verify import VerifyReport, check_row, verify_journal
from sync.outbox import (
    TAMPERED_PREFIX,
    Alarm,
    Checkpoint,
    Delivered,
    Lease,
    OutboxRecord,
    OutboxSummary,
    Quarantined,
    SideEvent,
)
from sync.timestamps import age_seconds, rfc3339
from wire.envelope import (
    GENESIS_CHAIN,
    RecordIdentity,
    canonical_ascii_json,
    chain_next,
    wrapped_key_digest,
)
from wire.events import TAMPERED_RECORD_ALARM
from wire.keys import WrappedKey

BUSY_TIMEOUT_MS = 5_000
DISK_CHECK_INTERVAL_SECONDS = 1.0  # free space changes slowly; statvfs once a second is enough
MAX_KIND_LENGTH = 64
MAX_CLIENT_REF_LENGTH = 128
MAX_SECRET_BYTES = 16_384
# Upper bound of what one append adds to the file (row, indexes, data key), for the cap check.
MAX_RECORD_BYTES = 2 * (MAX_META_BYTES + MAX_SECRET_BYTES) + 4_096
CAPACITY_CHECK_EVERY = 64
# Purge erases at most this many seqs per transaction: a few ms of lock (bench/cost_growth.py).
PURGE_CHUNK_ROWS = 500
PURGE_PAUSE_SECONDS = 0.001  # between chunks: a capture waiting for the lock gets it
# Capture's offline limits use the last summary plus this process's appends since, while that
# summary is at most this old (the sync engine takes one every second): see backlog.py.
BACKLOG_BOUND_MAX_AGE_SECONDS = 3.0
# How long a payment holds delivery's journal writes back at most (see priority.py): longer
# than a capture with a card already at hand, far shorter than a shopper looking for theirs.
CAPTURE_PRIORITY_WINDOW_SECONDS = 0.25
TAMPERED = "tampered"
QUARANTINE = (
    "UPDATE records SET state = 'quarantined', last_error = ?, leased_until = 0 "
    "WHERE seq = ? AND state = 'pending'"
)
DURABLE_SYNCHRONOUS = "PRAGMA synchronous=FULL"
BOOKKEEPING_SYNCHRONOUS = "PRAGMA synchronous=NORMAL"
SYNCHRONOUS_NAMES = {0: "off", 1: "normal", 2: "full", 3: "extra"}
_USED_BYTES = (
    "SELECT (p.page_count - f.freelist_count) * s.page_size "
    "FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s"
)

log = structlog.get_logger("posd.journal")

Sealer = Callable[[bytes], tuple[bytes, bytes]]
"""Given the AAD, encrypt the record's secret payload: returns (nonce, ciphertext)."""


class _DamagedPage(Exception):
    """A query hit a page SQLite cannot read: take the slow path around it."""


class _StaleTail(Exception):
    """The cached tail is behind the file: someone else appended."""


class DuplicateClientRef(JournalError):
    code = "duplicate_client_ref"


class Journal:
    """One journal file. Use `Journal.open(state_dir, settings)` or `Journal.open_read_only`;
    close it (or use `with`)."""

    def __init__(
        self,
        path: Path,
        settings: JournalSettings,
        *,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
        identity: IdentityFile | None = None,
    ) -> None:
        """Prefer `open`/`open_read_only`. With an `identity` (the state dir had a journal), a
        database without a schema is refused instead of being made anew."""
        self.path = path
        self.read_only = read_only
        self.settings = settings
        self._clock = clock
        self._lock = threading.RLock()
        # The data key this writer's last append used: its `data_keys.last_seq` is NULL (open)
        # until the writer moves to another key or closes (see schema v5).
        self._open_key: str | None = None
        self._tail_cache: tuple[int, bytes] | None = None
        # Where the last checkpoint ended (cached like the tail: appends compare against it).
        self._covered_cache: checkpoints.Mark | None = None
        self._checkpoint_timer_at: float | None = None
        # Around a damaged page, what the file cannot record is remembered by this process:
        # rows it cannot read, leases and settlements (delivered, quarantined) it cannot write.
        self._unreadable: set[int] = set()
        self._memory_leases: dict[int, float] = {}
        self._settled_in_memory: set[int] = set()
        self._floor = 0
        self._data_version: int | None = None
        self._disk_checked_at = float("-inf")
        self._used_bytes = 0
        self._key_digests: dict[str, str] = {}
        # Delivered records, counted once and then kept by this connection's own writes
        # (`_delivered_count`), so that `summary` costs what the backlog does, not the journal.
        self._delivered: int | None = None
        self._delivered_version: int | None = None
        self._appends_since_size_check = CAPACITY_CHECK_EVERY
        self._backlog = BacklogBound(BACKLOG_BOUND_MAX_AGE_SECONDS)
        self._priority = CapturePriority(CAPTURE_PRIORITY_WINDOW_SECONDS)
        # Summaries scan every record: they run on their own connection (WAL readers never
        # wait for the writer, and SQLite lets go of the GIL while it steps), so that a
        # payment's append does not queue behind one under `_lock`.
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        if not read_only:
            prepare_private_file(path)
        try:
            self._conn = self._connect(path, read_only)
            if read_only:
                self._check_schema_read_only()
            else:
                if identity is not None and _schema_version(self._conn) == 0:
                    self._conn.close()
                    raise refuse_blank(path.parent, identity)
                self._configure()
                migrate(self._conn, str(path))
            self._reader = self._connect(path, read_only)
            self._reader.execute("PRAGMA query_only=ON")
        except sqlite3.DatabaseError as error:
            raise JournalError(f"{path}: cannot open journal: {error}") from error
        self._identity = identity

    @staticmethod
    def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro" if read_only else str(path),
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
            uri=read_only,
        )
        conn.row_factory = sqlite3.Row
        return conn

    @classmethod
    def open(
        cls,
        state_dir: Path,
        settings: JournalSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> Journal:
        """Open (creating and migrating if needed) the journal of `state_dir` for writing.

        Raises `JournalIdentityError` if the database is not the journal this state dir had
        (emptied, replaced, or missing committed records): see `posd.journal.identity`.
        """
        prepare_private_dir(state_dir)
        known = IdentityFile.load(state_dir)
        journal = cls(
            state_dir / JOURNAL_FILE, settings or JournalSettings(), clock=clock, identity=known
        )
        try:
            with journal._lock:
                journal._identity = establish(journal._conn, state_dir, known)
                journal._observe_last_event_id()
        except BaseException:
            journal.close()
            raise
        return journal

    def _observe_last_event_id(self) -> None:
        """event_ids stay monotonic across restarts, whatever the wall clock did meanwhile."""
        with contextlib.suppress(sqlite3.DatabaseError):
            row = self._conn.execute(
                "SELECT event_id FROM records ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if row is not None:
                observe(str(row[0]))

    @classmethod
    def accept_loss(cls, state_dir: Path) -> AcceptedLoss:
        """`posd journal reset --accept-loss`: make the state dir's journal usable again after
        damage, giving up what is gone and never reusing a seq. What is left is kept: a
        replaced file is set aside (renamed, not deleted), a shortened one keeps its records."""
        prepare_private_dir(state_dir)
        known = IdentityFile.load(state_dir)
        if known is None:
            raise UsageError(f"{state_dir} has no journal identity to reconcile (nothing to reset)")
        issued = known.identity.high_water_seq
        try:
            with cls.open(state_dir) as journal:
                return AcceptedLoss("none", journal.journal_id, None, None, None)
        except JournalIdentityError:
            pass
        path = state_dir / JOURNAL_FILE
        kept_id = _readable_journal_id(path)
        if kept_id == known.identity.journal_id:
            with cls(path, JournalSettings()) as journal, journal._lock:
                after = last_seq(journal._conn)
                accept_gap(journal._conn, after, issued)
            return AcceptedLoss("gap_accepted", kept_id, after, issued, None)
        aside = set_aside(state_dir) if path.exists() and path.stat().st_size else None
        with cls(path, JournalSettings()) as journal, journal._lock:
            journal_id = start_new_journal(journal._conn, issued)
        IdentityFile.create(state_dir, Identity(journal_id, issued))
        return AcceptedLoss("new_journal", journal_id, None, None, str(aside) if aside else None)

    @property
    def journal_id(self) -> str:
        """The journal's identity: random, made once, carried in every event."""
        if self._identity is not None:
            return self._identity.identity.journal_id
        with self._lock:
            return stored_journal_id(self._conn) or "unknown"

    @classmethod
    def open_read_only(cls, state_dir: Path, settings: JournalSettings | None = None) -> Journal:
        """For inspection (stats, verify): never creates, migrates or changes anything."""
        path = state_dir / JOURNAL_FILE
        if not path.is_file():
            raise JournalError(f"no journal in {state_dir} (expected {JOURNAL_FILE})")
        return cls(path, settings or JournalSettings(), read_only=True)

    def _check_schema_read_only(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
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

    def _configure(self) -> None:
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"{self.path}: cannot switch the journal to WAL mode")
        conn.execute(DURABLE_SYNCHRONOUS)
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def durability(self) -> dict[str, Any]:
        """The durability settings in force on this connection (for status and tests)."""
        with self._lock:
            conn = self._conn
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
            secure_delete = bool(conn.execute("PRAGMA secure_delete").fetchone()[0])
        return {
            "journal_mode": mode,
            "synchronous": SYNCHRONOUS_NAMES.get(synchronous, str(synchronous)),
            "secure_delete": secure_delete,
        }

    def close(self) -> None:
        with self._lock, self._read_lock:
            if self._reader is not None:
                self._reader.close()
            if self._open_key is not None and self._tail_cache is not None:
                with contextlib.suppress(sqlite3.DatabaseError, JournalError):
                    # Best effort: a key left open is only kept longer, never lost.
                    key, (last_seq, _) = self._open_key, self._tail_cache
                    self._write(lambda conn: _close_key(conn, key, last_seq))
            self._conn.close()
            if self._identity is not None:
                self._identity.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------------

    def _write(
        self,
        body: Callable[[sqlite3.Connection], Any],
        on_commit: Callable[[Any], None] | None = None,
        *,
        durable: bool = True,
    ) -> Any:
        """Run `body` in one IMMEDIATE transaction (takes the write lock up front).

        `on_commit(result)` updates in-memory caches after the commit, still under the lock,
        so no other thread sees the file and the caches disagree. `durable=False` is for
        delivery bookkeeping only: no fsync at commit (see the module docstring).
        """
        with self._lock:
            conn = self._conn
            if not durable:
                conn.execute(BOOKKEEPING_SYNCHRONOUS)
            try:
                return self._transaction(conn, body, on_commit)
            finally:
                if not durable:
                    conn.execute(DURABLE_SYNCHRONOUS)

    def _transaction(
        self,
        conn: sqlite3.Connection,
        body: Callable[[sqlite3.Connection], Any],
        on_commit: Callable[[Any], None] | None,
    ) -> Any:
        try:
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

    # -- capture ---------------------------------------------------------------------------------

    def capture_priority(self) -> contextlib.AbstractContextManager[None]:
        """Hold delivery's writes (lease, settle, purge) back during a payment: priority.py."""
        return self._priority.hold()

    def size_on_disk(self) -> int:
        return size_on_disk(self.path)

    def _check_capacity(self, conn: sqlite3.Connection) -> None:
        """Refuse to grow past the cap. Counts the database's used pages (committed state,
        WAL included); the WAL file itself is bounded by SQLite's auto-checkpoint (~4 MiB).

        The count is a query, so it is made every `CAPACITY_CHECK_EVERY` appends while the
        journal is far from its cap, and on every append once within that many records of it.
        """
        self._appends_since_size_check += 1
        far = self._used_bytes + CAPACITY_CHECK_EVERY * MAX_RECORD_BYTES < self.settings.max_bytes
        if far and self._appends_since_size_check < CAPACITY_CHECK_EVERY:
            return
        self._appends_since_size_check = 0
        size = self._used_bytes = int(conn.execute(_USED_BYTES).fetchone()[0])
        if size >= self.settings.max_bytes:
            raise JournalFullError(
                f"journal is full ({size} of {self.settings.max_bytes} bytes): new payments "
                "are refused until delivered records are purged"
            )
        now = time.monotonic()
        if now - self._disk_checked_at < DISK_CHECK_INTERVAL_SECONDS:
            return
        free = shutil.disk_usage(self.path.parent).free
        if free >= self.settings.min_free_bytes:
            self._disk_checked_at = now
        else:
            raise JournalFullError(
                f"disk reserve reached ({free} bytes free, "
                f"reserve {self.settings.min_free_bytes}): new payments are refused"
            )

    def _tail(self, conn: sqlite3.Connection) -> tuple[int, bytes]:
        """(last seq, its chain value): cached after the first append, since only the daemon
        appends; a concurrent appender is caught by the seq primary key (see `append`)."""
        if self._tail_cache is not None:
            return self._tail_cache
        row = conn.execute("SELECT seq, chain FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        anchor = read_anchor(conn)
        seq, chain = (
            (int(row[0]), bytes(row[1])) if row is not None else anchor or (0, GENESIS_CHAIN)
        )
        gap = accepted_gap(conn)
        if gap is not None and gap[1] > seq:
            seq = gap[1]  # seqs lost with the file are never issued again
        return seq, chain

    def append(
        self,
        *,
        kind: str,
        meta: Mapping[str, Any],
        store_id: str,
        terminal_id: str,
        data_key: WrappedKey,
        seal: Sealer,
        client_ref: str | None = None,
    ) -> OutboxRecord:
        """Seal and append one record in one durable transaction; returns it as stored."""
        if not kind or len(kind) > MAX_KIND_LENGTH:
            raise UsageError(f"record kind must be 1-{MAX_KIND_LENGTH} characters")
        if client_ref is not None and not 0 < len(client_ref) <= MAX_CLIENT_REF_LENGTH:
            raise UsageError(f"client_ref must be 1-{MAX_CLIENT_REF_LENGTH} characters")
        clean_meta, meta_text = validate_meta(meta)
        wall = self._clock()
        event_id = uuid7_str(int(wall * 1000))
        captured_at = rfc3339(wall)

        covered: list[checkpoints.Mark | None] = [None]  # set by body, cached on commit

        def body(conn: sqlite3.Connection) -> OutboxRecord:
            self._check_capacity(conn)
            last_seq, previous = self._tail(conn)
            if data_key.key_id != self._open_key:
                self._switch_key(conn, data_key, last_seq)
            identity = RecordIdentity(
                seq=last_seq + 1,
                event_id=event_id,
                kind=kind,
                captured_at=captured_at,
                client_ref=client_ref,
                store_id=store_id,
                terminal_id=terminal_id,
                meta=clean_meta,
                data_key_id=data_key.key_id,
                wrapped_key_sha256=self._key_digest(data_key),
            )
            aad = identity.aad()
            nonce, ciphertext = seal(aad)
            chain = chain_next(previous, aad, nonce, ciphertext)
            try:
                conn.execute(
                    "INSERT INTO records (seq, event_id, kind, captured_at, client_ref, store_id, "
                    "terminal_id, meta, data_key_id, nonce, ciphertext, chain) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        identity.seq,
                        event_id,
                        kind,
                        captured_at,
                        client_ref,
                        store_id,
                        terminal_id,
                        meta_text,
                        data_key.key_id,
                        nonce,
                        ciphertext,
                        chain,
                    ),
                )
            except sqlite3.IntegrityError as error:
                if error.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
                    raise _StaleTail from error  # seq taken: another process appended
                if error.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_UNIQUE and _client_ref_taken(
                    conn, client_ref
                ):
                    raise DuplicateClientRef(
                        f"a record with client_ref {client_ref!r} already exists"
                    ) from error
                raise
            covered[0] = self._cover(conn, (identity.seq, chain), captured_at)
            return OutboxRecord(
                seq=identity.seq,
                event_id=event_id,
                kind=kind,
                captured_at=captured_at,
                client_ref=client_ref,
                meta=clean_meta,
                chain=chain.hex(),
                nonce=nonce,
                ciphertext=ciphertext,
                aad=aad,
                data_key=data_key,
                attempts=0,
            )

        def committed(record: OutboxRecord) -> None:
            self._backlog.appended(record.seq, *pending_amount(meta_text), captured_at)
            self._open_key = data_key.key_id
            self._tail_cache = (record.seq, bytes.fromhex(record.chain))
            self._covered_cache = covered[0]
            if self._identity is not None:
                self._identity.advance(record.seq)

        try:
            try:
                with self._priority.hold():
                    record: OutboxRecord = self._write(body, committed)
            except _StaleTail:
                # Another process appended since our tail was cached: reload it, once.
                self._tail_cache = self._covered_cache = None
                record = self._write(body, committed)
        except sqlite3.DatabaseError as error:
            if error.sqlite_errorcode == sqlite3.SQLITE_FULL:
                raise JournalFullError(f"journal cannot grow: {error}") from error
            raise JournalError(f"{self.path}: append failed: {error}") from error
        return record

    def _switch_key(self, conn: sqlite3.Connection, data_key: WrappedKey, last_seq: int) -> None:
        """Store `data_key` if purge removed it (or it is new) and open it; close the key this
        writer used before at `last_seq`, the last record that can use it (schema v5)."""
        conn.execute(
            "INSERT OR IGNORE INTO data_keys (key_id, provider, key_arn, algorithm, wrapped_key, "
            "encryption_context, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                data_key.key_id,
                data_key.provider,
                data_key.key_arn,
                data_key.algorithm,
                data_key.wrapped_key,
                canonical_ascii_json(dict(data_key.encryption_context)).decode(),
                self._clock(),
            ),
        )
        conn.execute("UPDATE data_keys SET last_seq = NULL WHERE key_id = ?", (data_key.key_id,))
        if self._open_key is not None:
            _close_key(conn, self._open_key, last_seq)

    def _cover(
        self, conn: sqlite3.Connection, end: checkpoints.Mark, created_at: str
    ) -> checkpoints.Mark:
        """Inside the append of the record at `end`: cut the checkpoint it completes, if it is
        the `checkpoint_every_records`th since the last one. Returns where coverage ends now."""
        start = self._covered_cache or checkpoints.covered_through(conn)
        if end[0] - start[0] < self.settings.checkpoint_every_records:
            return start
        try:
            checkpoints.insert(conn, self.journal_id, start, end, created_at)
        except sqlite3.IntegrityError as error:
            raise _StaleTail from error  # another process cut this range: reload and retry
        return end

    def cut_checkpoint(self, now: float) -> bool:
        """The checkpoint timer (see `sync.outbox.Outbox.cut_checkpoint`): every
        `checkpoint_every_seconds` from the first call, and again whenever the clock went back."""
        if self.read_only:
            return False
        started = self._checkpoint_timer_at
        if started is None:
            self._checkpoint_timer_at = now
            return False
        if 0 <= now - started < self.settings.checkpoint_every_seconds:
            return False
        self._checkpoint_timer_at = now

        def body(conn: sqlite3.Connection) -> checkpoints.Mark | None:
            return checkpoints.cut_if_any(conn, self.journal_id, rfc3339(now))

        def committed(end: checkpoints.Mark | None) -> None:
            if end is not None:
                self._covered_cache = end

        try:
            end = self._write(body, committed)
        except (sqlite3.DatabaseError, JournalError) as error:
            # A damaged or busy journal: the next timer tick tries again; the records are
            # covered later, never skipped (ranges start where the last one ended).
            log.error("journal.checkpoint_failed", error=str(error))
            return False
        if end is not None:
            log.info("journal.checkpoint", last_seq=end[0])
        return end is not None

    def _key_digest(self, data_key: WrappedKey) -> str:
        digest = self._key_digests.get(data_key.key_id)
        if digest is None:
            digest = self._key_digests[data_key.key_id] = wrapped_key_digest(data_key.wrapped_key)
        return digest

    def find_by_client_ref(self, client_ref: str) -> OutboxRecord | None:
        with self._lock:
            row = self._conn.execute(
                select_records("WHERE r.client_ref = ?"),
                (client_ref,),
            ).fetchone()
        return None if row is None or row["state"] == RecordState.PURGED else outbox_record(row)

    def records(self, after_seq: int = 0, batch: int = 500) -> Iterator[OutboxRecord]:
        """Every record still holding its payload, in seq order (read-only)."""
        while True:
            with self._lock:
                rows = self._conn.execute(
                    select_records(
                        "WHERE r.seq > ? AND r.state != 'purged' ORDER BY r.seq LIMIT ?"
                    ),
                    (after_seq, batch),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield outbox_record(row)
            after_seq = rows[-1]["seq"]

    # -- outbox (sync.outbox.Outbox) -------------------------------------------------------

    def _pending_floor(self, conn: sqlite3.Connection) -> int:
        """The lowest seq that is pending, found by scanning forward from the last one known.

        There is no index on `state` (it would cost every append a page write); this floor
        keeps leasing amortised O(1) instead. Only `retry_quarantined` makes lower records
        pending again: ours resets the floor, another process's shows up as a change of
        `PRAGMA data_version`, which resets it too.
        """
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._data_version = version
            self._floor = 0
        try:
            row = conn.execute(
                "SELECT seq FROM records WHERE seq >= ? AND state = 'pending' ORDER BY seq LIMIT 1",
                (self._floor,),
            ).fetchone()
        except sqlite3.DatabaseError:
            return self._floor  # a damaged page: lease walks from the floor it knows
        if row is not None:
            self._floor = int(row[0])
        return self._floor

    def lease(self, limit: int, now: float, lease_seconds: float) -> Lease:
        """Due pending records in seq order, each checked against its stored chain link first.

        A record whose link does not check out (its metadata, nonce, ciphertext or data key
        changed, or its predecessor is gone) is quarantined as `tampered`; one that cannot be
        read at all as `corrupt`. Neither is ever handed out, and neither stops the others.
        """
        self._priority.yield_to_capture()
        with self._lock:
            # Rows are read before the write transaction: a damaged page met inside one
            # poisons it, so only rows that could be read are ever written.
            try:
                candidates = self._due(self._conn, now, limit, now + lease_seconds)
                damaged: list[Quarantined] = []
            except _DamagedPage:
                candidates, damaged = self._due_around_damage(now, limit, now + lease_seconds)
            try:
                result: Lease = self._write(
                    lambda conn: self._settle_lease(conn, candidates, now, lease_seconds, damaged),
                    durable=False,
                )
            except sqlite3.DatabaseError:
                result = self._settle_each(candidates, now, lease_seconds, damaged)
        for item in damaged:
            self._quarantine_if_writable(item)
        return result

    def _settle_each(
        self,
        candidates: list[tuple[sqlite3.Row, bytes | None]],
        now: float,
        lease_seconds: float,
        damaged: list[Quarantined],
    ) -> Lease:
        """`_settle_lease` one row per transaction: around a damaged page, a transaction that
        writes several rows can fail as a whole. A row that cannot be written is refused."""
        records: list[OutboxRecord] = []
        refused: list[Quarantined] = []
        for candidate in candidates:
            try:
                one: Lease = self._write(
                    functools.partial(
                        self._settle_lease,
                        candidates=[candidate],
                        now=now,
                        lease_seconds=lease_seconds,
                    ),
                    durable=False,
                )
            except sqlite3.DatabaseError:
                one = self._settle_lease_in_memory(candidate, now + lease_seconds)
            records.extend(one.records)
            refused.extend(one.quarantined)
        return Lease(records, [*refused, *damaged])

    def _due(
        self, conn: sqlite3.Connection, now: float, limit: int, void_after: float
    ) -> list[tuple[sqlite3.Row, bytes | None]]:
        """Due pending rows, each with the chain value it must link to. A lease that ends after
        `void_after` (now + lease_seconds) was taken before the wall clock went back: void."""
        try:
            rows = conn.execute(
                select_records_with_previous(
                    "WHERE r.seq >= ? AND r.state = 'pending' AND r.next_attempt_at <= ? "
                    f"AND {LEASE_OVER} ORDER BY r.seq LIMIT ?"
                ),
                (self._pending_floor(conn), now, now, void_after, limit),
            ).fetchall()
            return [
                (row, self._link_of(conn, row))
                for row in rows
                if self._may_lease(int(row["seq"]), now)
            ]
        except sqlite3.DatabaseError as error:
            raise _DamagedPage from error

    def _link_of(self, conn: sqlite3.Connection, row: sqlite3.Row) -> bytes:
        previous = row["previous_chain"]
        if previous is None:
            previous = self._chain_before_first(conn, int(row["seq"]))
        return b"" if previous is None else bytes(previous)  # b"": its predecessor is gone

    def _settle_lease_in_memory(
        self, candidate: tuple[sqlite3.Row, bytes | None], until: float
    ) -> Lease:
        """A readable record whose lease cannot be written is leased in memory: delivered
        once by this process, and sent again (at least once) if this process stops first."""
        row, link = candidate
        seq = int(row["seq"])
        reason = self._lease_problem(row, link)
        if reason is None:
            try:
                record = outbox_record(row)
            except (ValueError, KeyError, TypeError) as error:
                reason = f"corrupt record: {error}"
            else:
                self._memory_leases[seq] = until
                return Lease([record])
        self._settled_in_memory.add(seq)
        return Lease([], [Quarantined(seq, reason)])

    def _due_around_damage(
        self, now: float, limit: int, void_after: float
    ) -> tuple[list[tuple[sqlite3.Row, bytes | None]], list[Quarantined]]:
        """Lease's slow path: every due row that can be read (with the chain value to check it
        against, None where the row before it cannot be read), and each unreadable row
        refused once (this process remembers it). Reads only, outside any transaction."""
        conn = self._conn
        rows: list[tuple[sqlite3.Row, bytes | None]] = []
        refused: list[Quarantined] = []
        floor = self._pending_floor(conn)
        previous: tuple[int, bytes] | None = None
        walk = walk_rows(conn, floor - 1, seq_ceiling(conn, self._issued_through()))
        for row in walk:
            if isinstance(row, Unreadable):
                previous = None
                if row.seq not in self._unreadable:
                    self._unreadable.add(row.seq)
                    refused.append(Quarantined(row.seq, f"corrupt record: {row.error}"))
                continue
            seq = int(row["seq"])
            link = previous[1] if previous and previous[0] == seq - 1 else None
            previous = (seq, bytes(row["chain"]))
            if row["state"] != RecordState.PENDING or not self._may_lease(seq, now):
                continue
            leased_until = row["leased_until"]
            lease_over = leased_until <= now or leased_until > void_after
            if row["next_attempt_at"] <= now and lease_over:
                rows.append((row, link))
            if len(rows) >= limit:
                break
        return rows, refused

    def _settle_lease(
        self,
        conn: sqlite3.Connection,
        candidates: list[tuple[sqlite3.Row, bytes | None]],
        now: float,
        lease_seconds: float,
        damaged: Sequence[Quarantined] = (),
    ) -> Lease:
        """Check each candidate, quarantine the bad, hide the good for `lease_seconds`."""
        leased: list[OutboxRecord] = []
        refused: list[Quarantined] = []
        for row, link in candidates:
            # The record view is built first and its AAD reused by the link check: one
            # metadata parse and one AAD encoding per record, not two (measured, bench/drain.py).
            try:
                record: OutboxRecord | Exception = outbox_record(row)
            except (ValueError, KeyError, TypeError) as error:
                record = error
            aad = None if isinstance(record, Exception) else record.aad
            reason = self._lease_problem(row, link, aad)
            if reason is None:
                if not isinstance(record, Exception):
                    leased.append(record)
                    continue
                reason = f"corrupt record: {record}"
            refused.append(Quarantined(int(row["seq"]), reason))
        conn.executemany(QUARANTINE, [(item.reason, item.seq) for item in refused])
        raised_at = rfc3339(self._clock())
        conn.executemany(
            "INSERT INTO alarms (event_id, kind, seq, detail, raised_at) VALUES (?, ?, ?, ?, ?)",
            [
                (uuid7_str(), TAMPERED_RECORD_ALARM, item.seq, item.reason, raised_at)
                for item in refused
                if item.tampered
            ],
        )
        # Still pending and not leased by anyone since it was read: another process's lease
        # in between makes the update a no-op, and the record is not handed out twice.
        # One statement for the whole lease (not one per record): RETURNING names the rows
        # it did hide.
        hidden_seqs = _hide(conn, [record.seq for record in leased], now, now + lease_seconds)
        hidden = [record for record in leased if record.seq in hidden_seqs]
        return Lease(hidden, [*refused, *damaged])

    def _quarantine_if_writable(self, item: Quarantined) -> None:
        """Mark an unreadable record quarantined in its own transaction, if its page can still
        be written (often it cannot; `_unreadable` keeps it out of this process's leases)."""
        with contextlib.suppress(sqlite3.DatabaseError):
            self._write(lambda conn: conn.execute(QUARANTINE, (item.reason, item.seq)))

    def _may_lease(self, seq: int, now: float) -> bool:
        """False for what this process already knows better than the damaged file."""
        if seq in self._unreadable or seq in self._settled_in_memory:
            return False
        return self._memory_leases.get(seq, 0.0) <= now

    def _issued_through(self) -> int | None:
        return self._identity.identity.high_water_seq if self._identity else None

    @staticmethod
    def _lease_problem(
        row: sqlite3.Row, link: bytes | None, aad: bytes | None = None
    ) -> str | None:
        """Why a pending row must not be delivered (None if it checks out). `link` is the
        chain value it must link to: b"" if its predecessor is gone, None if unknown (the row
        before it cannot be read: only the record's own structure is checked). `aad`: the
        row's AAD if already computed from this very row."""
        if link == b"":
            return f"{TAMPERED_PREFIX} the record before it (seq {row['seq'] - 1}) is missing"
        problems = check_row(row, link, aad)
        if not problems:
            return None
        problem = problems[0]
        if problem.kind == "chain":
            return f"{TAMPERED_PREFIX} {problem.detail}"
        return f"corrupt record: {problem.detail}"

    @staticmethod
    def _chain_before_first(conn: sqlite3.Connection, seq: int) -> bytes | None:
        """The chain value a record links to when the row before it is gone: the anchor,
        genesis, or the last record before a gap a technician accepted."""
        previous = seq - 1
        gap = accepted_gap(conn)
        if gap is not None and gap[1] == previous:
            previous = gap[0]
        return chain_at(conn, previous)

    def mark_delivered(self, delivered: Sequence[Delivered], now: float) -> None:
        self._settle_rows(
            "UPDATE records SET state = 'delivered', delivered_at = ?, remote_event_id = ?, "
            "leased_until = 0, last_error = NULL WHERE seq = ? AND state = 'pending'",
            [(now, item.remote_event_id, item.seq) for item in delivered],
            changed=self._count_delivered,
            durable=False,
        )

    def schedule_retry(self, seqs: Sequence[int], next_attempt_at: float, error: str) -> None:
        self._update_rows(
            "UPDATE records SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, "
            "leased_until = 0 WHERE seq = ? AND state = 'pending'",
            [(next_attempt_at, error, seq) for seq in seqs],
            durable=False,
        )

    def quarantine(self, seq: int, reason: str) -> None:
        self._settle_rows(QUARANTINE, [(reason, seq)])

    def _settle_rows(
        self,
        sql: str,
        rows: Sequence[tuple[Any, ...]],
        changed: Callable[[int | None], None] | None = None,
        *,
        durable: bool = True,
    ) -> None:
        """A final state (delivered, quarantined): one the file cannot take is kept in memory
        so this process does not lease the record again."""
        failed = self._update_rows(sql, rows, changed, durable=durable)
        with self._lock:
            self._settled_in_memory.update(failed)
            for seq in failed:
                self._memory_leases.pop(seq, None)

    def _update_rows(
        self,
        sql: str,
        rows: Sequence[tuple[Any, ...]],
        changed: Callable[[int | None], None] | None = None,
        *,
        durable: bool = True,
    ) -> list[int]:
        """Run `sql` (seq last) for each parameter row in one transaction; where a damaged
        page breaks that, one transaction per row, so every row that can be written is.
        Returns the seqs that could not be written (their effect is lost: a delivered record
        not marked is sent again later, at least once, never lost). `changed` is told, under
        the lock, how many rows changed once committed (None: not known, row by row)."""
        self._priority.yield_to_capture()
        try:
            self._write(lambda conn: conn.executemany(sql, rows).rowcount, changed, durable=durable)
            return []
        except sqlite3.DatabaseError:
            pass
        if changed is not None:
            with self._lock:
                changed(None)
        failed: list[int] = []
        for row in rows:
            try:
                self._write(functools.partial(_execute, sql=sql, parameters=row), durable=durable)
            except sqlite3.DatabaseError:
                failed.append(int(row[-1]))
        if failed:
            log.error("journal.damaged_rows_not_written", seqs=failed[:20], count=len(failed))
        return failed

    def retry_quarantined(self) -> int:
        """Return every quarantined record to pending, due now. Returns how many."""

        def body(conn: sqlite3.Connection) -> int:
            count = conn.execute(
                "UPDATE records SET state = 'pending', attempts = 0, next_attempt_at = 0, "
                "leased_until = 0 WHERE state = 'quarantined'"
            ).rowcount
            self._floor = 0  # under the lock: no lease can move it past these meanwhile
            return int(count)

        returned: int = self._write(body)
        self._backlog.forget()  # pending again: the backlog bound must start over
        return returned

    def summary(self) -> OutboxSummary:
        """Exact counts: the backlog read on the reader connection (through the partial
        indexes of pending and quarantined records: it costs what the backlog does), the
        delivered count from the writer's cache (`_delivered_count`)."""
        taken_at = time.monotonic()
        try:
            with self._read_lock:
                summary, through_seq = self._read_summary()
        except sqlite3.DatabaseError:
            with self._lock:
                return self._summary_around_damage()
        self._backlog.observed(summary, through_seq, taken_at)
        return summary

    def backlog_bound(self) -> OutboxSummary | None:
        """At least the backlog the exact `summary` would show (pending count, amounts, oldest
        pending), at no cost; None without a recent summary to start from (see backlog.py)."""
        return self._backlog.bound()

    def _read_summary(self) -> tuple[OutboxSummary, int]:
        """The summary and the highest seq it counted, from one read transaction."""
        conn = self._reader
        if conn is None:
            raise JournalError(f"{self.path}: journal is closed")
        conn.execute("BEGIN")
        try:
            counts = self._backlog_counts(conn)
            counts[RecordState.DELIVERED] = self._delivered_without_waiting(conn)
            summary = self._summary(conn, counts)
            through_seq = conn.execute("SELECT MAX(seq) FROM records").fetchone()[0]
        finally:
            conn.execute("COMMIT")  # ends the read transaction; nothing was written
        return summary, int(through_seq or 0)

    def _summary_around_damage(self) -> OutboxSummary:
        """The summary from every row that can still be read (a damaged page broke the
        aggregate queries); rows that cannot be read are counted as `unreadable`."""
        counts: dict[str, int] = {}
        amounts: dict[str, int] = {}
        oldest: str | None = None
        unreadable = tampered = 0
        ceiling = seq_ceiling(self._conn, self._issued_through())
        for row in walk_rows(self._conn, 0, ceiling):
            if isinstance(row, Unreadable):
                unreadable += 1
                continue
            state = str(row["state"])
            if state == RecordState.PENDING and int(row["seq"]) in self._settled_in_memory:
                continue  # settled by this process; the damaged file could not record it
            counts[state] = counts.get(state, 0) + 1
            if state == RecordState.QUARANTINED and str(row["last_error"] or "").startswith(
                TAMPERED_PREFIX
            ):
                tampered += 1
            if state == RecordState.PENDING:
                oldest = oldest or row["captured_at"]
                currency, amount = pending_amount(row["meta"])
                if currency is not None:
                    amounts[currency] = amounts.get(currency, 0) + amount
        return OutboxSummary(
            pending=counts.get(RecordState.PENDING, 0),
            quarantined=counts.get(RecordState.QUARANTINED, 0),
            delivered=counts.get(RecordState.DELIVERED, 0),
            oldest_pending_captured_at=oldest,
            pending_amount_by_currency=amounts,
            tampered=tampered,
            unreadable=unreadable,
        )

    @staticmethod
    def _backlog_counts(conn: sqlite3.Connection) -> dict[str, int]:
        """Pending, quarantined and tampered records for `summary`, at a cost that grows with
        the backlog, not with the journal: through their partial indexes (schema v3)."""
        pending = conn.execute("SELECT COUNT(*) FROM records WHERE state = 'pending'").fetchone()
        quarantined, tampered = conn.execute(
            "SELECT COUNT(*), TOTAL(last_error LIKE ? || '%') FROM records "
            "WHERE state = 'quarantined'",
            (TAMPERED_PREFIX,),
        ).fetchone()
        return {
            RecordState.PENDING: int(pending[0]),
            RecordState.QUARANTINED: int(quarantined),
            TAMPERED: int(tampered),
        }

    def _delivered_without_waiting(self, reader: sqlite3.Connection) -> int:
        """The delivered count for a summary, which never waits for the writer: the writer's
        cache when its lock is free; else the cache as last kept (a settlement in progress
        may not be in it yet: a status figure, no limit depends on it); else a count on the
        reader connection."""
        if self._lock.acquire(blocking=False):
            try:
                return self._delivered_count(self._conn)
            finally:
                self._lock.release()
        cached = self._delivered
        if cached is not None:
            return cached
        row = reader.execute("SELECT COUNT(*) FROM records WHERE state = 'delivered'").fetchone()
        return int(row[0])

    def _delivered_count(self, conn: sqlite3.Connection) -> int:
        """Delivered records: counted once (the one scan of the whole journal), then kept by
        this connection's own writes (`_count_delivered`); a commit by another connection
        (`PRAGMA data_version` changed) has it counted again. Call under `_lock`."""
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if self._delivered is None or version != self._delivered_version:
            self._delivered = int(
                conn.execute("SELECT COUNT(*) FROM records WHERE state = 'delivered'").fetchone()[0]
            )
            self._delivered_version = version
        return self._delivered

    def _count_delivered(self, changed: int | None) -> None:
        """This connection committed `changed` more (fewer, if negative) delivered records;
        None: not known, count again."""
        if self._delivered is not None:
            self._delivered = None if changed is None else self._delivered + changed

    @staticmethod
    def _state_counts(conn: sqlite3.Connection) -> dict[str, int]:
        """Records by state, plus `tampered` (quarantined ones that failed their check)."""
        rows = conn.execute(
            "SELECT state, state = 'quarantined' AND last_error LIKE ? || '%', COUNT(*) "
            "FROM records GROUP BY 1, 2",
            (TAMPERED_PREFIX,),
        )
        counts: dict[str, int] = {}
        for state, tampered, count in rows.fetchall():
            counts[str(state)] = counts.get(str(state), 0) + int(count)
            if tampered:
                counts[TAMPERED] = int(count)
        return counts

    @staticmethod
    def _summary(conn: sqlite3.Connection, counts: Mapping[str, int]) -> OutboxSummary:
        oldest = conn.execute(
            "SELECT captured_at FROM records WHERE state = 'pending' ORDER BY seq LIMIT 1"
        ).fetchone()
        # Any one record's bytes may be damaged: only valid JSON with an integer amount in
        # range is summed, and TOTAL (a float) cannot overflow where SUM would raise.
        amounts = conn.execute(
            "SELECT json_extract(meta, '$.currency'), "
            "TOTAL(json_extract(meta, '$.amount')) "
            "FROM records WHERE state = 'pending' AND json_valid(meta) "
            "AND json_type(meta, '$.currency') = 'text' "
            "AND json_type(meta, '$.amount') = 'integer' "
            "AND json_extract(meta, '$.amount') BETWEEN 0 AND ? "
            "GROUP BY 1",
            (MAX_AMOUNT_MINOR,),
        ).fetchall()
        return OutboxSummary(
            pending=counts.get(RecordState.PENDING, 0),
            quarantined=counts.get(RecordState.QUARANTINED, 0),
            delivered=counts.get(RecordState.DELIVERED, 0),
            oldest_pending_captured_at=oldest[0] if oldest else None,
            pending_amount_by_currency={str(cur): int(total or 0) for cur, total in amounts},
            tampered=counts.get(TAMPERED, 0),
        )

    # -- retention ---------------------------------------------------------------------------

    def purge_delivered(self, delivered_before: float) -> int:
        """Erase delivered records older than `delivered_before`, `PURGE_CHUNK_ROWS` seqs a
        transaction (`purge_in_chunks`). Returns how many were erased."""
        return self.purge_in_chunks(delivered_before, PURGE_CHUNK_ROWS)

    def purge_in_chunks(self, delivered_before: float, chunk_rows: int) -> int:
        """Erase delivered records older than `delivered_before`. Returns how many were erased.

        Payloads are erased at once (`secure_delete` overwrites them); the rows themselves go
        only from the front of the journal, leaving the chain value of the last one removed as
        the anchor that verification starts from. A purged row behind a pending or quarantined
        one stays as a payload-less link until the front catches up.

        The work is done in chunks of `chunk_rows` seqs, each its own short transaction,
        with the lock released between them so that captures interleave: the lock is never held
        for long, whatever the journal holds. The walk goes forward from the front and stops at
        the first record delivered within retention, so it costs what it purges (plus the
        backlog it steps over), not the journal. A record delivered late therefore holds the
        ones after it until it too is old enough: purge may come later, never earlier.
        """
        erased = 0
        try:
            after = self._write(_front) - 1
            while True:
                self._priority.yield_to_capture()
                step: _PurgeStep = self._write(
                    functools.partial(
                        _purge_chunk, after=after, before=delivered_before, rows=chunk_rows
                    ),
                    self._purged,
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
        self._drop_spent_keys()
        return erased

    def _drop_spent_keys(self) -> None:
        """Delete the data keys whose `last_seq` is behind the front: no row can use them.

        Foreign keys are off for this one statement: SQLite checks a deleted parent key by
        scanning `records` (no index on `data_key_id`, on purpose: one more page per append),
        a scan of the whole journal per key; `last_seq`, kept in the same transactions as the
        appends, already proves that no row refers to these keys (schema v5)."""
        with self._lock:
            conn = self._conn
            conn.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: before it
            try:
                self._write(
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

    def _purged(self, step: _PurgeStep) -> None:
        self._count_delivered(-step.erased)  # purging takes delivered records only

    # -- inspection ----------------------------------------------------------------------------

    def verify(self, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Check structure, the chain and every ciphertext's integrity, without decrypting."""
        with self._lock:
            issued = self._identity.identity.high_water_seq if self._identity else None
            if issued is None and self.read_only:
                known = IdentityFile.load(self.path.parent)
                issued = known.identity.high_water_seq if known else None
            return verify_journal(self._conn, progress, issued_through=issued)

    def stats(self) -> dict[str, Any]:
        """Counts, bounds, backlog and size, for `posd journal stats` (read-only queries)."""
        with self._lock:
            counts = self._state_counts(self._conn)
            summary = self._summary(self._conn, counts)
            import sqlite_utils  # inspection only: the hot paths never load it

            db = sqlite_utils.Database(self._conn)
            bounds = next(db.query("SELECT MIN(seq) AS first, MAX(seq) AS last FROM records"))
            keys = {
                row["provider"]: row["count"]
                for row in db.query(
                    "SELECT provider, COUNT(*) AS count FROM data_keys GROUP BY provider"
                )
            }
        oldest_age = age_seconds(summary.oldest_pending_captured_at, self._clock())
        return {
            "path": str(self.path),
            "records": {state.value: counts.get(state.value, 0) for state in RecordState},
            "first_seq": bounds["first"],
            "last_seq": bounds["last"],
            "oldest_pending_captured_at": summary.oldest_pending_captured_at,
            "oldest_pending_age_seconds": None if oldest_age is None else round(oldest_age, 3),
            "pending_amount_by_currency": dict(summary.pending_amount_by_currency),
            "data_keys": keys,
            "checkpoints": dataclasses.asdict(self.checkpoint_status()),
            "size_bytes": self.size_on_disk(),
            "max_bytes": self.settings.max_bytes,
        }

    def pending_alarms(self, limit: int) -> Sequence[Alarm]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT alarm_id, event_id, kind, seq, detail, raised_at FROM alarms "
                "WHERE sent_at IS NULL ORDER BY alarm_id LIMIT ?",
                (limit,),
            ).fetchall()
        return [Alarm(*row) for row in rows]

    def pending_side_events(self, limit: int) -> Sequence[SideEvent]:
        alarms = self.pending_alarms(limit)
        if len(alarms) >= limit:
            return alarms
        with self._lock:
            try:
                return [*alarms, *checkpoints.unsent(self._conn, limit - len(alarms))]
            except sqlite3.DatabaseError as error:
                # A damaged page under the checkpoints: the alarms still go out, and verify
                # names the damage (like any other page of the file).
                log.error("journal.checkpoints_unreadable", error=str(error))
                return alarms

    def mark_side_events_sent(self, events: Sequence[SideEvent], now: float) -> None:
        """Alarms and checkpoints accepted by EventBridge; each table in one transaction."""
        alarms = [(now, e.alarm_id) for e in events if isinstance(e, Alarm)]
        cuts = [(now, e.checkpoint_id) for e in events if isinstance(e, Checkpoint)]
        if alarms:
            self._update_rows("UPDATE alarms SET sent_at = ? WHERE alarm_id = ?", alarms)
        if cuts:
            self._update_rows(checkpoints.MARK_SENT, cuts)

    def checkpoint_status(self) -> checkpoints.CheckpointStatus:
        """The last checkpoint's end and how many wait to be sent (for status and metrics)."""
        with self._lock:
            try:
                return checkpoints.status(self._conn)
            except sqlite3.DatabaseError:
                return checkpoints.CheckpointStatus(None, 0)  # a damaged file: unknown

    def release_leases(self) -> int:
        """Make every leased pending record due to lease again at once; returns how many.

        For a daemon that stopped its delivery: the next start need not wait out the leases.
        """

        def body(conn: sqlite3.Connection) -> int:
            return conn.execute(RELEASE_LEASES).rowcount

        try:
            released: int = self._write(body)
        except sqlite3.DatabaseError:
            return self._release_leases_around_damage()
        return released

    def _release_leases_around_damage(self) -> int:
        """`release_leases` row by row from the lowest pending seq known, where a damaged page
        broke the one statement (found by a chaos test: SIGTERM then exited 1 with a
        traceback). Leases kept in memory (rows the file could not update) are dropped; rows
        that cannot be written, and any beyond the first `RELEASE_AROUND_DAMAGE_ROWS`, keep
        their lease in the file: it runs out by itself."""
        with self._lock:
            first, last = self._floor, self._issued_through()
            in_memory = len(self._memory_leases)  # leases the damaged file could not take
            self._memory_leases.clear()
        if last is None:
            return in_memory
        released, kept = in_memory, 0
        for seq in range(first, min(last, first + RELEASE_AROUND_DAMAGE_ROWS) + 1):
            try:
                released += self._write(functools.partial(_release_one, seq=seq))
            except sqlite3.DatabaseError:
                kept += 1
        log.warning("journal.leases_released_around_damage", released=released, kept=kept)
        return released


# A lease is over when it ran out, or when it ends further ahead than a lease lasts: it was
# taken before the wall clock went back (params: now, now + lease_seconds).
LEASE_OVER = "(r.leased_until <= ? OR r.leased_until > ?)"
RELEASE_AROUND_DAMAGE_ROWS = 10_000  # a bound on row-by-row work at shutdown
RELEASE_LEASES = "UPDATE records SET leased_until = 0 WHERE state = 'pending' AND leased_until > 0"


@dataclasses.dataclass(frozen=True)
class _PurgeStep:
    erased: int
    through: int  # the last seq this step looked at
    done: bool


_NO_SEQ = 2**63 - 1  # above every seq: with no row left, every closed key is spent


def _front(conn: sqlite3.Connection) -> int:
    """The first seq still in the file (one past the last, if it holds none)."""
    # One aggregate a query: MIN and MAX together would scan an index instead of seeking.
    first = conn.execute("SELECT MIN(seq) FROM records").fetchone()[0]
    if first is not None:
        return int(first)
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()[0]) + 1


def _purge_chunk(conn: sqlite3.Connection, *, after: int, before: float, rows: int) -> _PurgeStep:
    """One bounded step of `Journal.purge_delivered`: erase the payloads of the seqs after
    `after` delivered before `before` (at most `rows` seqs, up to the first record delivered within
    retention), then move the front past the purged rows it leads with. Seq ranges walk the
    primary key: no statement here scans the table."""
    through = after + rows
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
    return _PurgeStep(int(erased), through, young is not None or through >= int(tail))


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


def _close_key(conn: sqlite3.Connection, key_id: str, last_seq: int) -> None:
    conn.execute(
        "UPDATE data_keys SET last_seq = ? WHERE key_id = ? AND last_seq IS NULL",
        (last_seq, key_id),
    )


def _hide(conn: sqlite3.Connection, seqs: Sequence[int], now: float, until: float) -> set[int]:
    """Lease the records `seqs` until `until` where they are still pending and not leased by
    anyone since they were read (another process's lease in between makes the update skip
    that row, so it is not handed out twice). Returns the seqs actually leased."""
    if not seqs:
        return set()
    marks = ",".join("?" * len(seqs))
    rows = conn.execute(
        f"UPDATE records SET leased_until = ? WHERE seq IN ({marks}) "  # noqa: S608 - marks only
        "AND state = 'pending' AND (leased_until <= ? OR leased_until > ?) RETURNING seq",
        (until, *seqs, now, until),
    ).fetchall()
    return {int(row[0]) for row in rows}


def _release_one(conn: sqlite3.Connection, seq: int) -> int:
    return int(conn.execute(RELEASE_LEASES + " AND seq = ?", (seq,)).rowcount)


def _client_ref_taken(conn: sqlite3.Connection, client_ref: str | None) -> bool:
    """Whether a UNIQUE failure came from `client_ref` (the only unique key a caller sets)."""
    if client_ref is None:
        return False
    row = conn.execute("SELECT 1 FROM records WHERE client_ref = ?", (client_ref,)).fetchone()
    return row is not None


def _schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _readable_journal_id(path: Path) -> str | None:
    """The journal id stored in the database at `path`, if it can be read at all."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if _schema_version(conn) == 0:
                return None
            return stored_journal_id(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None


def _execute(conn: sqlite3.Connection, sql: str, parameters: tuple[Any, ...]) -> None:
    conn.execute(sql, parameters)
