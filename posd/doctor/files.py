"""The state dir and every file in it: the service's user's and group's, nothing for others;
each file exactly as open as it must be. Each fix is the `chown`/`chmod`/`install` command
that makes it so.

Two users share the dir through its group (capture `posd`, delivery `posd-sync`, group
`posd`: posd.journal.files): what both write is group read-write (0660) and may be either's;
the delivery status is 0640; anything else (the key caches) is owner-only (0600) and the
dir owner's, so the other daemon's user cannot read it.

The service user: whoever runs doctor, unless that is root (a technician's `sudo posd
doctor` for the daemon's user): then the state dir's owner, the user systemd's
`StateDirectory=` created it for. A file left owned by root by one `sudo posd run` is then
what it is, a wrong owner, and `chown` (never `reset --accept-loss`) is the fix.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from posd.doctor.checks import FAIL, OK, Check, Context
from posd.journal.files import DELIVERY_STATUS_FILE, DIR_MODE, FILE_MODE, OWNER_ONLY_MODE
from posd.journal.permissions import SHARED_FILES, group_name, user_name
from posd.syncd.status_file import STATUS_FILE_MODE

SUBDIR_MODE = 0o700  # nothing under the state dir is shared but its top-level files
OTHER_BITS = 0o007
ROOT_UID = 0


def service_uid(state_dir: Path) -> int:
    uid = os.geteuid()
    if uid == ROOT_UID and state_dir.is_dir():
        return state_dir.stat().st_uid
    return uid


def _command(*words: str) -> str:
    return "`" + " ".join(shlex.quote(word) for word in words) + "`"


def check_state_dir(ctx: Context) -> Check:
    state_dir = ctx.config.state_dir
    user = user_name(os.geteuid() if not state_dir.exists() else service_uid(state_dir))
    if not state_dir.is_dir():
        create = _command("install", "-d", "-m", f"{DIR_MODE:04o}", "-o", user, str(state_dir))
        return Check(
            "state dir",
            FAIL,
            f"{state_dir} does not exist",
            f"run {create} (posd also creates it on start), or fix [terminal] state_dir "
            f"in {ctx.config.path}",
        )
    info = state_dir.stat()
    mode = stat.S_IMODE(info.st_mode)
    detail = f"{state_dir} owner {user_name(info.st_uid)}, mode {mode:04o}"
    fixes = []
    if os.geteuid() not in (info.st_uid, ROOT_UID) and info.st_gid not in os.getgroups():
        fixes.append(_command("sudo", "chown", user_name(os.geteuid()), str(state_dir)))
        detail += f": neither owned by {user_name(os.geteuid())}, who runs doctor, nor its group's"
    if mode != DIR_MODE:
        fixes.append(_command("chmod", f"{DIR_MODE:04o}", str(state_dir)))
        detail += f": must be {DIR_MODE:04o}"
    if fixes:
        return Check("state dir", FAIL, detail, "run " + " and ".join(fixes))
    return Check("state dir", OK, detail)


def _files(state_dir: Path) -> list[Path]:
    return sorted(path for path in state_dir.rglob("*") if not path.is_symlink())


def wanted_mode(state_dir: Path, path: Path, info: os.stat_result) -> int:
    """The mode `path` must have: shared files group read-write, the delivery status group
    readable, everything else its owner's alone."""
    if stat.S_ISDIR(info.st_mode):
        return SUBDIR_MODE
    if path.parent != state_dir:
        return OWNER_ONLY_MODE
    if path.name in SHARED_FILES:
        return FILE_MODE
    if path.name == DELIVERY_STATUS_FILE:
        return STATUS_FILE_MODE
    return OWNER_ONLY_MODE


def rightful_owner(info: os.stat_result, want: int, uid: int, gid: int) -> bool:
    """The service's user; or, for a file shared through the group, any user but root whose
    file is in the service's group (the other daemon's)."""
    if info.st_uid == uid:
        return True
    shared = want & ~OWNER_ONLY_MODE
    return bool(shared) and info.st_uid != ROOT_UID and info.st_gid == gid


def check_state_files(ctx: Context) -> Check:
    """Every file and subdirectory under the state dir: the service's, none of it others'."""
    state_dir = ctx.config.state_dir
    uid = service_uid(state_dir)
    gid = state_dir.stat().st_gid
    user = user_name(uid)
    wrong_owner: list[Path] = []
    wrong_mode: list[tuple[Path, int]] = []
    problems = []
    files = _files(state_dir)
    for path in files:
        info = path.lstat()
        if stat.S_ISSOCK(info.st_mode):
            continue  # the API socket's mode is the socket unit's
        want = wanted_mode(state_dir, path, info)
        mode = stat.S_IMODE(info.st_mode)
        name = str(path.relative_to(state_dir))
        if not rightful_owner(info, want, uid, gid):
            wrong_owner.append(path)
            problems.append(f"{name} owned by {user_name(info.st_uid)}")
        if mode != want:
            wrong_mode.append((path, want))
            problems.append(f"{name} is {mode:04o}")
    if not problems:
        return Check(
            "state files", OK, f"{len(files)} files, all {user}'s or its group's, none others'"
        )
    fixes = []
    if wrong_owner:
        owner = f"{user}:{group_name(gid)}"
        fixes.append(_command("chown", owner, *(str(p) for p in wrong_owner)))
    for want in sorted({want for _, want in wrong_mode}):
        paths = [str(p) for p, w in wrong_mode if w == want]
        fixes.append(_command("chmod", f"{want:04o}", *paths))
    return Check(
        "state files",
        FAIL,
        f"in {state_dir}: " + "; ".join(problems),
        "run " + " and ".join(fixes) + " (as root), then restart posd",
    )
