"""The journal's place on disk: a state dir private to the service's group, files only it reads.

Capture (`posd run`, user `posd`) and delivery (`posd sync run`, user `posd-sync`) are two users
sharing the group `posd` (systemd/): what both write (the journal and its side files, its
identity, the locks, the capture priority flag) is group read-write; nothing is ever readable
by other users; what only capture may read (the key caches) stays owner-only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from posd.errors import JournalError

JOURNAL_FILE = "journal.db"
DELIVERY_FILE = "delivery.db"  # delivery's own database: see posd.journal.outcomes
IDENTITY_FILE = "journal.identity"  # see posd.journal.identity
LOCK_FILE = "posd.lock"  # see posd.daemon.lock
SYNC_LOCK_FILE = "sync.lock"  # the delivery daemon's own (posd.daemon.lock, posd.syncd)
PRIORITY_FILE = "capture.priority"  # see posd.journal.priority
DELIVERY_STATUS_FILE = "delivery.status"  # see posd.syncd.status_file
DIR_MODE = 0o770  # both daemons' users (group posd) create and replace files in it
FILE_MODE = 0o660  # files both daemons write (SQLite gives -wal/-shm the journal's mode)
OWNER_ONLY_MODE = 0o600  # what only its writer may read (the key caches)
OTHER_BITS = 0o007  # never: nothing in the state dir is other users' to read
SQLITE_SIDE_FILES = ("-wal", "-shm")


def prepare_state_dir(state_dir: Path) -> None:
    """Create the state dir private to the service's group (0770), or set it if we own it."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        info = state_dir.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != DIR_MODE:
            state_dir.chmod(DIR_MODE)
    except OSError as error:
        raise JournalError(
            f"cannot prepare state directory {state_dir}: {error.strerror}"
        ) from error


def prepare_state_file(path: Path) -> None:
    """Create the journal file 0660 before SQLite does (SQLite gives -wal/-shm the same mode);
    set its mode if we own it (the other daemon's user may have made it)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        os.close(fd)
        info = path.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != FILE_MODE:
            path.chmod(FILE_MODE)
    except OSError as error:
        raise JournalError(f"cannot open journal file {path}: {error.strerror}") from error


def set_mode(fd: int, mode: int) -> None:
    """Give the file open at `fd` exactly `mode`, whatever the umask took off at its creation,
    if this process owns it (the other daemon's user's file keeps the mode it was given)."""
    info = os.fstat(fd)
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != mode:
        os.fchmod(fd, mode)


def size_on_disk(path: Path) -> int:
    """Bytes of the database file and its WAL and shared-memory files."""
    total = 0
    for suffix in ("", *SQLITE_SIDE_FILES):
        try:
            total += os.stat(f"{path}{suffix}").st_size
        except FileNotFoundError:
            continue
    return total
