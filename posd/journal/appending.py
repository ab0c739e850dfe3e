"""Capture's side of the journal: append with the tail, the capacity check and the key switch,
and the checkpoints an append (or the checkpoint timer) completes.

Append is a hot path: plain `sqlite3` with hand-written SQL, one durable transaction per
record, and the Python around it is a measured share of capture latency
(bench/journal_append.py, whose `breakdown_us` says where an append's time goes). An append
runs the statements a raw durable insert runs, BEGIN IMMEDIATE, its INSERT and COMMIT: the
tail, the open data key, each key's digest and where the last checkpoint ended are cached
here (a checkpoint check is a comparison: `_cover`), and the capacity is counted every
`CAPACITY_CHECK_EVERY` appends while the journal is far from its cap. The disk's free space is
checked on every append (one `statvfs`, a few microseconds): a reserve checked now and then
lets payments in below it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from posd.errors import DiskBelowReserveError, JournalError, JournalFullError, UsageError
from posd.ids import observe, uuid7_str
from posd.journal import checkpoints
from posd.journal.backlog import BacklogBound
from posd.journal.database import Database
from posd.journal.identity import accepted_gap
from posd.journal.rows import MAX_META_BYTES, read_anchor, validate_meta
from posd.journal.settings import JournalSettings
from posd.journal.waits import AppendWaits
from sync.outbox import OutboxRecord, fresh_record
from sync.timestamps import rfc3339
from wire.envelope import (
    GENESIS_CHAIN,
    AadForm,
    MetaValue,
    canonical_ascii_json,
    chain_next,
    wrapped_key_digest,
)
from wire.keys import WrappedKey

MAX_KIND_LENGTH = 64
MAX_CLIENT_REF_LENGTH = 128
MAX_SECRET_BYTES = 16_384
# Upper bound of what one append adds to the file (row, indexes, data key), for the cap check.
MAX_RECORD_BYTES = 2 * (MAX_META_BYTES + MAX_SECRET_BYTES) + 4_096
CAPACITY_CHECK_EVERY = 64
# Within this many bytes of the cap, the size is counted on every append.
NEAR_CAP_BYTES = CAPACITY_CHECK_EVERY * MAX_RECORD_BYTES
_INSERT = (
    "INSERT INTO records (seq, event_id, kind, captured_at, client_ref, store_id, terminal_id, "
    "meta, data_key_id, nonce, ciphertext, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_USED_BYTES = (
    "SELECT (p.page_count - f.freelist_count) * s.page_size "
    "FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s"
)

log = structlog.get_logger("posd.journal")

Sealer = Callable[[bytes], tuple[bytes, bytes]]
"""Given the AAD, encrypt the record's secret payload: returns (nonce, ciphertext)."""


# A record's clear fields, made once before its transaction (which may run twice): event_id,
# kind, captured_at, client_ref, store_id, terminal_id, meta, meta_text. A plain tuple (a
# NamedTuple's constructor is a Python call on every payment's path).
_Fields = tuple[str, str, str, str | None, str, str, dict[str, MetaValue], str]


class _StaleTail(Exception):
    """The cached tail is behind the file: someone else appended."""


class DuplicateClientRef(JournalError):
    code = "duplicate_client_ref"


class Appender:
    """Appends records and cuts checkpoints for one writer connection (`Database.write`)."""

    def __init__(
        self,
        db: Database,
        settings: JournalSettings,
        clock: Callable[[], float],
        backlog: BacklogBound,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._backlog = backlog
        # The data key this writer's last append used: its `data_keys.last_seq` is NULL (open)
        # until the writer moves to another key or closes (see schema v5).
        self._open_key: str | None = None
        self._tail_cache: tuple[int, bytes] | None = None
        # Where the last checkpoint ended (cached like the tail: appends compare against it).
        self._covered_cache: checkpoints.Mark | None = None
        # PRAGMA data_version when `_covered_cache` was last right (another connection's
        # commit changes it), and the one read by the append in progress.
        self._covered_version: int | None = None
        self._version_in_flight: int | None = None
        self._checkpoint_timer_at: float | None = None
        self._used_bytes = 0
        # The AAD's form for the last store, terminal and data key appended with.
        self._aad_form: AadForm | None = None
        self._appends_since_size_check = CAPACITY_CHECK_EVERY
        self._disk_dir = str(db.path.parent)
        self.waits = AppendWaits()

    def _check_size(self, conn: sqlite3.Connection) -> None:
        """Counts the database's used pages (committed state, WAL included); the WAL file
        itself is bounded by SQLite's auto-checkpoint (~4 MiB)."""
        self._appends_since_size_check = 0
        size = self._used_bytes = int(conn.execute(_USED_BYTES).fetchone()[0])
        if size >= self._settings.max_bytes:
            raise JournalFullError(self._full_message(size))

    def _full_message(self, size: int) -> str:
        return (
            f"journal is full ({size} of {self._settings.max_bytes} bytes): new payments "
            "are refused until delivered records are purged"
        )

    def _disk_problem(self) -> str | None:
        disk = os.statvfs(self._disk_dir)  # what `shutil.disk_usage(...).free` reads
        free = disk.f_bavail * disk.f_frsize
        return None if free >= self._settings.min_free_bytes else self._reserve_message(free)

    def _reserve_message(self, free: int) -> str:
        return (
            f"disk reserve not met: {free} bytes free on the journal's disk, under the "
            f"reserve of {self._settings.min_free_bytes} bytes ([journal] min_free_bytes); the "
            "journal itself is not full: new payments are refused until space is freed there"
        )

    def space_problem(self) -> str | None:
        """Why the next append would be refused for space, or None."""
        refusal = self.space_refusal()
        return None if refusal is None else str(refusal)

    def space_refusal(self) -> JournalFullError | None:
        """The error the next append would raise for space, or None (its `code` tells the
        disk's reserve from the journal's own cap). The size is counted again only when the
        last count reached the cap (a purge may have made room)."""
        problem = self._disk_problem()
        if problem is not None:
            return DiskBelowReserveError(problem)
        if self._used_bytes < self._settings.max_bytes:
            return None
        with self._db.lock:
            size = self._used_bytes = int(self._db.writer.execute(_USED_BYTES).fetchone()[0])
        return (
            JournalFullError(self._full_message(size)) if size >= self._settings.max_bytes else None
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
        fields: _Fields = (
            uuid7_str(int(wall * 1000)),
            kind,
            rfc3339(wall),
            client_ref,
            store_id,
            terminal_id,
            clean_meta,
            meta_text,
        )
        db = self._db
        priority = db.priority
        try:
            held = priority.begin()  # capture's priority over delivery (priority.py)
            try:
                asked = time.perf_counter()
                with db.lock:
                    try:
                        return self._commit(fields, data_key, seal, asked)
                    except _StaleTail:
                        # Another process appended since our tail was cached: reload it, once.
                        self._tail_cache = self._covered_cache = None
                        return self._commit(fields, data_key, seal, time.perf_counter())
            finally:
                priority.end(held)
        except sqlite3.DatabaseError as error:
            if error.sqlite_errorcode == sqlite3.SQLITE_FULL:
                raise JournalFullError(f"journal cannot grow: {error}") from error
            raise JournalError(f"{self._db.path}: append failed: {error}") from error

    def _commit(
        self, fields: _Fields, data_key: WrappedKey, seal: Sealer, asked: float
    ) -> OutboxRecord:
        """The append's transaction, under `Database.lock`: what `Database.write` runs, written
        out flat on the payment's path (no closures, no cells), and the caches updated after
        the commit, still under the lock. `asked`: when the append asked for the lock."""
        event_id, kind, captured_at, client_ref, store_id, terminal_id, meta, meta_text = fields
        key_id = data_key.key_id
        conn = self._db.begin_prompt()
        try:
            self.waits.observe(time.perf_counter() - asked)
            # The capacity: the size is a query, counted every `CAPACITY_CHECK_EVERY` appends
            # while the journal is far from its cap, on every append once near it; the disk's
            # reserve on every append (one statvfs, a few microseconds: a reserve checked now
            # and then lets payments in below it).
            self._appends_since_size_check += 1
            if (
                self._appends_since_size_check >= CAPACITY_CHECK_EVERY
                or self._used_bytes + NEAR_CAP_BYTES >= self._settings.max_bytes
            ):
                self._check_size(conn)
            disk = os.statvfs(self._disk_dir)  # `_disk_problem`, without its call
            if disk.f_bavail * disk.f_frsize < self._settings.min_free_bytes:
                raise DiskBelowReserveError(self._reserve_message(disk.f_bavail * disk.f_frsize))
            last_seq, previous = self._tail_cache or self._tail(conn)
            if key_id != self._open_key:
                self._switch_key(conn, data_key, last_seq)
            seq = last_seq + 1
            # The AAD filled in from the metadata's canonical text (the bytes
            # `RecordIdentity.aad` encodes: wire.envelope.sealed_aad), not encoded again; the
            # store's, terminal's and key's parts filled in once per key (`AadForm`).
            form = self._aad_form
            if form is None or form.serves != (store_id, terminal_id, key_id):
                form = self._aad_form = AadForm(
                    store_id, terminal_id, key_id, wrapped_key_digest(data_key.wrapped_key)
                )
            aad = form.fill(seq, event_id, kind, captured_at, client_ref, meta_text)
            nonce, ciphertext = seal(aad)
            chain = chain_next(previous, aad, nonce, ciphertext)
            try:
                conn.execute(
                    _INSERT,
                    (
                        seq,
                        event_id,
                        kind,
                        captured_at,
                        client_ref,
                        store_id,
                        terminal_id,
                        meta_text,
                        key_id,
                        nonce,
                        ciphertext,
                        chain,
                    ),
                )
            except sqlite3.IntegrityError as error:
                _explain_refused_insert(conn, error, client_ref)
                raise
            tail = (seq, chain)
            # A checkpoint check is a comparison with the cached end of coverage (`_cover`).
            covered = self._covered_cache
            if covered is None or seq - covered[0] >= self._settings.checkpoint_every_records:
                covered = self._cover(conn, tail, captured_at)
            else:
                self._version_in_flight = self._covered_version  # nothing new was read
            conn.commit()  # COMMIT: `commit`, not `execute`, so the profile tells it apart
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._backlog.appended(seq, meta, captured_at)
        self._open_key = key_id
        self._tail_cache = tail
        self._covered_cache = covered
        self._covered_version = self._version_in_flight
        if self._db.identity is not None:
            self._db.identity.advance(seq)
        return fresh_record(
            {
                "seq": seq,
                "event_id": event_id,
                "kind": kind,
                "captured_at": captured_at,
                "client_ref": client_ref,
                "meta": meta,
                "chain": chain.hex(),
                "nonce": nonce,
                "ciphertext": ciphertext,
                "aad": aad,
                "data_key": data_key,
                "attempts": 0,
            }
        )

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

    def close_open_key(self) -> None:
        """At close: record the last seq of the key this writer kept open. Best effort: a key
        left open is only kept longer, never lost. Call under `Database.lock`."""
        if self._open_key is not None and self._tail_cache is not None:
            with contextlib.suppress(sqlite3.DatabaseError, JournalError):
                key, (last_seq, _) = self._open_key, self._tail_cache
                self._db.write(lambda conn: _close_key(conn, key, last_seq))

    def _cover(
        self, conn: sqlite3.Connection, end: checkpoints.Mark, created_at: str
    ) -> checkpoints.Mark:
        """Inside the append of the record at `end`: cut the checkpoint it completes, if it is
        the `checkpoint_every_records`th since the last one. Returns where coverage ends now.

        Called only when the cached end of coverage says a cut may be due (`_commit` compares
        `end` with it): coverage only moves forward (checkpoints are appended; the newest is
        never forgotten; the purge anchor only grows), so a cache that another process made
        stale is behind the truth, and a record that completes no checkpoint against it
        completes none against the truth."""
        # Another connection's commit since ours (the delivery daemon's timed checkpoint) makes
        # the cached end of coverage stale: read it again, or this cut could overlap a range
        # already cut (and sent, and forgotten) by the other process.
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self._covered_version:
            self._covered_cache = None
        self._version_in_flight = version
        start = self._covered_cache or checkpoints.covered_through(conn)
        if end[0] - start[0] < self._settings.checkpoint_every_records:
            return start
        try:
            checkpoints.insert(conn, self._db.journal_id(), start, end, created_at)
        except sqlite3.IntegrityError as error:
            raise _StaleTail from error  # another process cut this range: reload and retry
        return end

    def cut_checkpoint(self, now: float, force: bool = False) -> bool:
        """The checkpoint timer (see `sync.outbox.Outbox.cut_checkpoint`): every
        `checkpoint_every_seconds` from the first call, and again whenever the clock went back;
        at once with `force` (a drain: everything appended so far gets covered)."""
        if self._db.read_only:
            return False
        started = self._checkpoint_timer_at
        if started is None and not force:
            self._checkpoint_timer_at = now
            return False
        due = started is None or not 0 <= now - started < self._settings.checkpoint_every_seconds
        if not (force or due):
            return False
        self._checkpoint_timer_at = now

        def body(conn: sqlite3.Connection) -> checkpoints.Mark | None:
            return checkpoints.cut_if_any(conn, self._db.journal_id(), rfc3339(now))

        def committed(end: checkpoints.Mark | None) -> None:
            if end is not None:
                self._covered_cache = end

        try:
            end = self._db.write(body, committed)
        except (sqlite3.DatabaseError, JournalError) as error:
            # A damaged or busy journal: the next timer tick tries again; the records are
            # covered later, never skipped (ranges start where the last one ended).
            log.error("journal.checkpoint_failed", error=str(error))
            return False
        if end is not None:
            log.info("journal.checkpoint", last_seq=end[0])
        return end is not None


def observe_last_event_id(conn: sqlite3.Connection) -> None:
    """event_ids stay monotonic across restarts, whatever the wall clock did meanwhile."""
    with contextlib.suppress(sqlite3.DatabaseError):
        row = conn.execute("SELECT event_id FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            observe(str(row[0]))


def _close_key(conn: sqlite3.Connection, key_id: str, last_seq: int) -> None:
    conn.execute(
        "UPDATE data_keys SET last_seq = ? WHERE key_id = ? AND last_seq IS NULL",
        (last_seq, key_id),
    )


def _explain_refused_insert(
    conn: sqlite3.Connection, error: sqlite3.IntegrityError, client_ref: str | None
) -> None:
    """Raise what a refused INSERT of an append means, if it is one of ours: its seq taken
    (another process appended: `_StaleTail`) or its client_ref (`DuplicateClientRef`)."""
    if error.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
        raise _StaleTail from error
    if error.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_UNIQUE and _client_ref_taken(
        conn, client_ref
    ):
        raise DuplicateClientRef(
            f"a record with client_ref {client_ref!r} already exists"
        ) from error


def _client_ref_taken(conn: sqlite3.Connection, client_ref: str | None) -> bool:
    """Whether a UNIQUE failure came from `client_ref` (the only unique key a caller sets)."""
    if client_ref is None:
        return False
    row = conn.execute("SELECT 1 FROM records WHERE client_ref = ?", (client_ref,)).fetchone()
    return row is not None
