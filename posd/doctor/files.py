"""The state dir and every file in it: owned by the service user, private, readable and
writable by it. Each fix is the `chown`/`chmod`/`install` command that makes it so.

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
from posd.journal.permissions import user_name

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
GROUP_OTHER_BITS = 0o077
OWNER_RW = 0o600
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
        create = _command(
            "install", "-d", "-m", f"{PRIVATE_DIR_MODE:04o}", "-o", user, str(state_dir)
        )
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
    if info.st_uid != os.geteuid() and os.geteuid() != ROOT_UID:
        fixes.append(_command("sudo", "chown", user_name(os.geteuid()), str(state_dir)))
        detail += f": not owned by {user_name(os.geteuid())}, who runs doctor"
    if mode & GROUP_OTHER_BITS or mode & PRIVATE_DIR_MODE != PRIVATE_DIR_MODE:
        fixes.append(_command("chmod", f"{PRIVATE_DIR_MODE:04o}", str(state_dir)))
        detail += f": must be {PRIVATE_DIR_MODE:04o}"
    if fixes:
        return Check("state dir", FAIL, detail, "run " + " and ".join(fixes))
    return Check("state dir", OK, detail)


def _files(state_dir: Path) -> list[Path]:
    return sorted(path for path in state_dir.rglob("*") if not path.is_symlink())


def check_state_files(ctx: Context) -> Check:
    """Every file and subdirectory under the state dir: the service user's, private."""
    state_dir = ctx.config.state_dir
    uid = service_uid(state_dir)
    user = user_name(uid)
    wrong_owner: list[Path] = []
    wrong_mode: list[tuple[Path, int]] = []
    problems = []
    files = _files(state_dir)
    for path in files:
        info = path.lstat()
        if stat.S_ISSOCK(info.st_mode):
            continue  # the API socket's mode is the socket unit's
        want = PRIVATE_DIR_MODE if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE_MODE
        mode = stat.S_IMODE(info.st_mode)
        name = str(path.relative_to(state_dir))
        if info.st_uid != uid:
            wrong_owner.append(path)
            problems.append(f"{name} owned by {user_name(info.st_uid)}")
        if mode & GROUP_OTHER_BITS or mode & want != want:
            wrong_mode.append((path, want))
            problems.append(f"{name} is {mode:04o}")
    if not problems:
        return Check("state files", OK, f"{len(files)} files, all {user}'s and private")
    fixes = []
    if wrong_owner:
        fixes.append(_command("chown", user, *(str(p) for p in wrong_owner)))
    for want in sorted({want for _, want in wrong_mode}):
        paths = [str(p) for p, w in wrong_mode if w == want]
        fixes.append(_command("chmod", f"{want:04o}", *paths))
    return Check(
        "state files",
        FAIL,
        f"in {state_dir}: " + "; ".join(problems),
        "run " + " and ".join(fixes) + " (as root), then restart posd",
    )
