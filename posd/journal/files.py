"""The journal's place on disk: a state dir private to the service, a file only it reads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from posd.errors import JournalError

JOURNAL_FILE = "journal.db"
IDENTITY_FILE = "journal.identity"  # see posd.journal.identity
LOCK_FILE = "posd.lock"  # see posd.daemon.lock
SYNC_LOCK_FILE = "sync.lock"  # the delivery daemon's own (posd.daemon.lock, posd.syncd)
PRIORITY_FILE = "capture.priority"  # see posd.journal.priority
DELIVERY_STATUS_FILE = "delivery.status"  # see posd.syncd.status_file
DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm")


def prepare_private_dir(state_dir: Path) -> None:
    """Create the state dir private to the service (0700), or tighten it if we own it."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        info = state_dir.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != DIR_MODE:
            state_dir.chmod(DIR_MODE)
    except OSError as error:
        raise JournalError(
            f"cannot prepare state directory {state_dir}: {error.strerror}"
        ) from error


def prepare_private_file(path: Path) -> None:
    """Create the journal file 0600 before SQLite does (SQLite gives -wal/-shm the same mode)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        os.close(fd)
        if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
            path.chmod(FILE_MODE)
    except OSError as error:
        raise JournalError(f"cannot open journal file {path}: {error.strerror}") from error


def size_on_disk(path: Path) -> int:
    """Bytes of the database file and its WAL and shared-memory files."""
    total = 0
    for suffix in ("", *SQLITE_SIDE_FILES):
        try:
            total += os.stat(f"{path}{suffix}").st_size
        except FileNotFoundError:
            continue
    return total
