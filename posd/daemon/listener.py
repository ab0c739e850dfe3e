"""The API's listening socket: passed by systemd (socket activation), or bound here.

Under systemd `posd.socket` owns the socket: it exists before the daemon and outlives its
restarts, and the daemon takes it as fd 3 (the sd_listen_fds protocol: `LISTEN_PID` is this
process, `LISTEN_FDS` counts the sockets; both are unset once read so no child inherits them).
It is never unlinked here.

Otherwise the daemon binds `[api] socket` itself, holding the state dir's lock (`lock.py`):
a stale socket file (nobody listening) is replaced, a live one (another process answers on
it) or anything that is not a socket is refused with the path named. On stop the path is
unlinked only if it is still the very socket bound here.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from posd.daemon.lock import StateDirLock
from posd.errors import PosdError

log = structlog.get_logger("posd.daemon")

SOCKET_MODE = 0o660
SOCKET_DIR_MODE = 0o750
LISTEN_BACKLOG = 1024  # a full backlog answers a Unix-socket connect EAGAIN at once
SD_LISTEN_FDS_START = 3
LISTEN_ENV = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
PROBE_TIMEOUT_S = 1.0


class SocketPathError(PosdError):
    """The socket path cannot be used: a live socket or a non-socket is there. Exit 2: a
    technician must look (another process, or `[api] socket` names the wrong path)."""

    code = "socket_path"


class ActivationError(PosdError):
    """systemd passed sockets this daemon cannot serve (the socket unit is wrong)."""

    code = "socket_activation"


@dataclass
class Listener:
    """A bound, listening Unix socket and whether this process bound it (and may unlink it)."""

    socket: socket.socket
    path: Path | None  # where it was bound here; None: passed by systemd
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket file bound here

    @property
    def activated(self) -> bool:
        return self.path is None

    def close(self) -> None:
        """Close the socket; unlink its file only if the path still holds the one bound here."""
        self.socket.close()
        if self.path is None or self.inode is None:
            return
        try:
            info = self.path.lstat()
        except FileNotFoundError:
            return
        if (info.st_dev, info.st_ino) == self.inode:
            self.path.unlink(missing_ok=True)


def open_listener(
    path: Path, gid: int | None, lock: StateDirLock, environ: MutableMapping[str, str] | None = None
) -> Listener:
    """systemd's socket if it passed one, else `path` bound here (under `lock`)."""
    passed = from_systemd(os.environ if environ is None else environ)
    if passed is None:
        return bind_here(path, gid, lock)
    if passed.socket.getsockname() != str(path):  # the CLI and the register look at `path`
        log.warning("api.socket_elsewhere", passed=passed.socket.getsockname(), config=str(path))
    return passed


def from_systemd(environ: MutableMapping[str, str]) -> Listener | None:
    """The socket systemd passed as fd 3, or None when none was passed to this process."""
    pid, count = environ.get("LISTEN_PID"), environ.get("LISTEN_FDS")
    if pid is None or count is None or pid != str(os.getpid()):
        return None
    for name in LISTEN_ENV:
        environ.pop(name, None)
    if count != "1":
        raise ActivationError(f"systemd passed {count} sockets, expected 1 (posd.socket)")
    try:
        os.set_inheritable(SD_LISTEN_FDS_START, False)
        sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    except OSError as error:
        raise ActivationError(f"fd {SD_LISTEN_FDS_START} is not a socket: {error}") from error
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.close()
        raise ActivationError("systemd passed a socket that is not a Unix stream socket")
    return Listener(sock, None)


def bind_here(path: Path, gid: int | None, lock: StateDirLock) -> Listener:
    """Bind and listen on `path`, 0660 and group `gid`; only with the state dir's lock held."""
    if not lock.held:
        raise SocketPathError(f"{path}: not bound: the state dir's lock is not held")
    try:
        path.parent.mkdir(mode=SOCKET_DIR_MODE, parents=True, exist_ok=True)
        _clear_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            info = path.lstat()
            if gid is not None:
                os.chown(path, -1, gid)
            os.chmod(path, SOCKET_MODE)
            sock.listen(LISTEN_BACKLOG)
        except BaseException:
            sock.close()
            raise
    except OSError as error:
        raise SocketPathError(f"{path}: cannot listen: {error.strerror or error}") from error
    return Listener(sock, path, (info.st_dev, info.st_ino))


def _clear_stale(path: Path) -> None:
    """Remove a socket file nobody listens on; refuse a live socket or any other file."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise SocketPathError(f"{path} exists and is not a socket: remove it or fix [api] socket")
    if _answers(path):
        raise SocketPathError(
            f"{path}: another process listens on it (owner uid {info.st_uid}): "
            "stop it or fix [api] socket"
        )
    path.unlink(missing_ok=True)


def _answers(path: Path) -> bool:
    """Whether something accepts connections on the socket at `path` (if we cannot even ask,
    it is not ours to replace)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(PROBE_TIMEOUT_S)
    try:
        probe.connect(str(path))
    except OSError as error:
        return error.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    finally:
        probe.close()
    return True
