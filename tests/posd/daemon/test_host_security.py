"""Host security as tests: the API socket admits its group and nobody else; the state dir,
journal and identity file stay private to the daemon's user. (The unit's exposure score is
checked in tests/systemd/test_unit.py; the diag bundle's scan is with the bundle itself.)"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from posd.journal import JOURNAL_FILE
from posd.journal.identity import IDENTITY_FILE
from tests.posd.daemon.conftest import DaemonFactory

OUTSIDER = "nobody"
SOCKET_GROUP = "root"  # a group the outsider is not in
STATUS_REQUEST = b"GET /v1/status HTTP/1.0\r\n\r\n"
CHILD_TIMEOUT_S = 10.0

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching to another user to knock on the socket needs root"
)


def connect_as(user: str, groups: list[int], path: Path) -> str:
    """Fork, become `user` with exactly `groups`, talk to the socket: the status line, or
    the error's name."""
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns to pytest
        outcome = b"?"
        try:
            entry = pwd.getpwnam(user)
            os.setgroups(groups)
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(CHILD_TIMEOUT_S)
                client.connect(str(path))
                client.sendall(STATUS_REQUEST)
                outcome = client.recv(12)
        except OSError as error:
            outcome = type(error).__name__.encode()
        finally:
            os.write(writing, outcome)
            os._exit(0)
    os.close(writing)
    try:
        os.waitpid(child, 0)
        return os.read(reading, 64).decode()
    finally:
        os.close(reading)


@contextlib.contextmanager
def traversable(path: Path) -> Iterator[None]:
    """Let other users reach `path` (g+x and o+x on each directory above it; a user in a
    directory's group is judged by the group bits alone), then put the modes back."""
    changed = []
    reach = stat.S_IXGRP | stat.S_IXOTH
    for directory in path.parents:
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & reach != reach:
            directory.chmod(mode | reach)
            changed.append((directory, mode))
    try:
        yield
    finally:
        for directory, mode in changed:
            directory.chmod(mode)


@needs_root
def test_a_client_outside_the_socket_group_is_refused(make_daemon: DaemonFactory) -> None:
    daemon = make_daemon(socket_group=SOCKET_GROUP)
    group = grp.getgrnam(SOCKET_GROUP).gr_gid
    assert daemon.socket.stat().st_gid == group
    with traversable(daemon.socket):
        assert connect_as(OUTSIDER, [], daemon.socket) == "PermissionError"
        assert connect_as(OUTSIDER, [group], daemon.socket).endswith(" 200")


def test_state_dir_journal_and_identity_are_private(make_daemon: DaemonFactory) -> None:
    """The daemons' group (capture and delivery are two users in it) shares them; others never
    see them; the delivery status is only read by capture."""
    daemon = make_daemon()
    assert daemon.pay("private-1")[0] == 201
    state = daemon.dir / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o770
    for name in (JOURNAL_FILE, f"{JOURNAL_FILE}-wal", f"{JOURNAL_FILE}-shm", IDENTITY_FILE):
        path = state / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o660, name
    for path in state.iterdir():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0, path.name
