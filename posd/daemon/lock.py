"""One process per state dir: an exclusive `flock` on `STATE_DIR/posd.lock`, held for life.

Two daemons on one state dir would both deliver from one journal, and the second would take
the first's socket. `posd run` takes this lock before anything else (before the journal
opens, before the socket is touched) and holds it until it exits; the kernel drops it when
the process dies, so a SIGKILL leaves no stale lock. `flock` cannot say who holds a lock, so
the holder writes its PID into the file once locked, for the refusal to name it.

The delivery daemon (`posd sync run`) holds a lock of its own, `STATE_DIR/sync.lock`: one
delivery engine per journal. Commands that must run with neither daemon (`journal reset`, a
flush from the CLI) take both, so each lock file is group read-write (the two daemons are
two users sharing the group `posd`: posd.journal.files).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from posd.errors import PosdError
from posd.journal.files import FILE_MODE, SYNC_LOCK_FILE, prepare_state_dir, set_mode
from posd.journal.files import LOCK_FILE as LOCK_FILE  # re-exported (defined in files.py)
from posd.journal.permissions import inaccessible, permission_error

LOCK_MODE = FILE_MODE  # 0660: the CLI, as either daemon's user, takes both locks
PID_READ_BYTES = 32
UNIT_NAME = "posd"
SYNC_UNIT_NAME = "posd-sync"
# Each lock file and the service that holds it.
UNIT_OF_LOCK = {LOCK_FILE: UNIT_NAME, SYNC_LOCK_FILE: SYNC_UNIT_NAME}


class StateDirLocked(PosdError):
    """Another process holds the state dir. Exit 1: under systemd a restart succeeds once the
    other one has stopped (the unit's `Restart=on-failure`)."""

    exit_code = 1
    code = "state_dir_locked"

    def __init__(self, state_dir: Path, holder: int | None, lock_file: str = LOCK_FILE) -> None:
        self.holder = holder
        unit = UNIT_OF_LOCK[lock_file]
        command = "posd run" if lock_file == LOCK_FILE else "posd sync run"
        who = f"{command} (pid {holder})" if holder else f"another {command} (pid not written yet)"
        super().__init__(
            f"{state_dir} is in use by {who}: one per state dir. "
            f"If it is the service, `systemctl status {unit}`; "
            f"else stop that process first (kill {holder or 'PID'})"
        )


class LockUnavailable(PosdError):
    """The lock file cannot be opened (another user's file, a symlink, a read-only disk)."""

    exit_code = 1
    code = "state_dir_lock_error"


class StateDirLock:
    """The lock of one state dir, held while this object is open. A context manager."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path, lock_file: str = LOCK_FILE) -> StateDirLock:
        """Lock `state_dir` (created 0770 if missing) or raise `StateDirLocked` at once;
        `lock_file`: `LOCK_FILE` (the capture daemon's) or `SYNC_LOCK_FILE` (delivery's)."""
        prepare_state_dir(state_dir)
        path = state_dir / lock_file
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, LOCK_MODE)
        except PermissionError:
            # Another user's file (`sudo posd run` once by hand): a chown fixes it.
            raise permission_error(state_dir, inaccessible(state_dir)) from None
        except OSError as error:
            raise LockUnavailable(f"cannot open lock file {path}: {error.strerror}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_pid(fd)
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StateDirLocked(state_dir, holder, lock_file) from None
            raise LockUnavailable(f"cannot lock {path}: {error.strerror}") from error
        set_mode(fd, LOCK_MODE)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (closing the file drops it). The file stays: unlinking it would let
        a third process lock a new file while a second still waits on the old one."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, PID_READ_BYTES, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def without_daemons(state_dir: Path) -> Iterator[None]:
    """Hold both daemons' locks for the block: for what must never run beside `posd run`
    (which appends) or `posd sync run` (which delivers)."""
    with StateDirLock.acquire(state_dir), StateDirLock.acquire(state_dir, SYNC_LOCK_FILE):
        yield
