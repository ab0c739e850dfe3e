"""Files in the state dir this process cannot read or write, and the command that fixes them.

A state dir file owned by another user (someone ran `sudo posd run` once by hand: the files it
made are root's, 0600) is not damage: nothing is lost, and `posd journal reset --accept-loss`
would only fail the same way. The fix is to give the files back to the service's user
(`chown`, and group read-write for what both daemons' users share), then start posd again.
`JournalPermissionError` names each file, its owner and mode, and that command.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from posd.errors import JournalError
from posd.journal.files import (
    DELIVERY_FILE,
    IDENTITY_FILE,
    JOURNAL_FILE,
    LOCK_FILE,
    PRIORITY_FILE,
    SQLITE_SIDE_FILES,
    SYNC_LOCK_FILE,
)

ROOT_UID = 0
SHARED_FILES = (
    JOURNAL_FILE,
    *(f"{JOURNAL_FILE}{suffix}" for suffix in SQLITE_SIDE_FILES),
    DELIVERY_FILE,
    *(f"{DELIVERY_FILE}{suffix}" for suffix in SQLITE_SIDE_FILES),
    IDENTITY_FILE,
    LOCK_FILE,
    SYNC_LOCK_FILE,
    PRIORITY_FILE,
)


class JournalPermissionError(JournalError):
    """A state dir file this process may not read or write (owner or mode): fix with chown."""

    code = "journal_permissions"


@dataclass(frozen=True)
class Inaccessible:
    path: Path
    owner: str
    mode: int

    def describe(self) -> str:
        return f"{self.path} (owner {self.owner}, mode {self.mode:04o})"


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def inaccessible(state_dir: Path) -> list[Inaccessible]:
    """The state dir itself and each of the files both daemons write in it (the journal's, its
    identity, the locks, the priority flag) that this process cannot read and write. Other
    files (a key the operator made read-only on purpose) are not posd's to judge here."""
    found: list[Inaccessible] = []
    for path in (state_dir, *(state_dir / name for name in SHARED_FILES)):
        try:
            info = path.lstat()
        except OSError:
            continue
        wanted = os.R_OK | os.W_OK | (os.X_OK if stat.S_ISDIR(info.st_mode) else 0)
        if not os.access(path, wanted):
            found.append(Inaccessible(path, user_name(info.st_uid), stat.S_IMODE(info.st_mode)))
    return found


def service_owner(state_dir: Path) -> tuple[str, str]:
    """(user, group) the state dir's files should belong to: the state dir's own owner
    (systemd's `StateDirectory=` made it the service's), unless that is root and this
    process is not (the dir itself was made by hand with sudo): then this process's."""
    uid, gid = os.geteuid(), os.getegid()
    try:
        info = state_dir.stat()
    except OSError:
        return user_name(uid), group_name(gid)
    if info.st_uid != ROOT_UID or uid == ROOT_UID:
        uid, gid = info.st_uid, info.st_gid
    return user_name(uid), group_name(gid)


def shared_paths(state_dir: Path) -> list[Path]:
    """The state dir and the files in it both daemons' users write (through the group)."""
    files = (state_dir / name for name in SHARED_FILES)
    return [state_dir, *(path for path in files if path.exists())]


def fix_command(state_dir: Path) -> str:
    """Give everything to the service's user and group, none of it to others, and group
    read-write what both daemons write (the key caches stay their owner's)."""
    user, group = service_owner(state_dir)
    shared = " ".join(str(path) for path in shared_paths(state_dir))
    return (
        f"sudo chown -R {user}:{group} {state_dir} && sudo chmod -R u+rwX,o= {state_dir} "
        f"&& sudo chmod g+rwX {shared}"
    )


def permission_error(state_dir: Path, found: list[Inaccessible]) -> JournalPermissionError:
    user, _ = service_owner(state_dir)
    files = "; ".join(item.describe() for item in found) or str(state_dir)
    return JournalPermissionError(
        f"posd (running as {user_name(os.geteuid())}) cannot read or write {files}: not damage, "
        f"nothing is lost (do not reset the journal). Give the files back to {user}: "
        f"`{fix_command(state_dir)}`, then start posd again"
    )


def check_access(state_dir: Path) -> None:
    """Raise `JournalPermissionError` naming every state dir file this process cannot use."""
    found = inaccessible(state_dir)
    if found:
        raise permission_error(state_dir, found)
