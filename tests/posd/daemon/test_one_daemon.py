"""One daemon per state dir, and a socket only its owner touches: `posd run` twice on one lane,
a live or foreign file at the socket path, and the socket passed by systemd (activation)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.posd.daemon.conftest import DaemonFactory
from tests.posd.daemon.harness import REPO

REFUSAL_BOUND_S = 2.0
RUN_TIMEOUT_S = 30.0


def posd_run(config: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """A second `posd run` by hand (no systemd around it), and how long it took to exit."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    env.pop("NOTIFY_SOCKET", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "posd", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env,
        cwd=config.parent,
    )
    return done, time.monotonic() - started


def inode(path: Path) -> tuple[int, int]:
    info = path.lstat()
    return info.st_dev, info.st_ino


def listening(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.parent.mkdir(parents=True, exist_ok=True)
    sock.bind(str(path))
    sock.listen(8)
    return sock


def test_a_second_run_exits_at_once_naming_the_holder_and_the_first_keeps_its_socket(
    make_daemon: DaemonFactory,
) -> None:
    first = make_daemon()
    assert first.proc is not None
    before = inode(first.socket)
    second, seconds = posd_run(first.config)
    assert second.returncode != 0, second.stderr[-2000:]
    print(f"second posd run refused in {seconds:.2f} s")
    assert seconds < REFUSAL_BOUND_S, f"took {seconds:.2f} s"
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {first.proc.pid}" in lines[0], second.stderr[-2000:]
    assert "systemctl status posd" in lines[0]
    assert inode(first.socket) == before
    assert first.call("GET", "/v1/status")[0] == 200
    assert first.pay("one-daemon-1")[0] == 201
    assert first.stop() == 0
    assert not first.socket.exists()  # its own socket, unlinked by its owner


def test_a_live_socket_at_the_path_is_never_unlinked(make_daemon: DaemonFactory) -> None:
    daemon = make_daemon(start=False)
    other = listening(daemon.socket)  # another process's socket (another lane, another user)
    try:
        before = inode(daemon.socket)
        refused, _ = posd_run(daemon.config)
        assert refused.returncode != 0
        assert str(daemon.socket) in refused.stderr and "Traceback" not in refused.stderr
        assert inode(daemon.socket) == before
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(str(daemon.socket))  # still the other process's, still listening
        probe.close()
    finally:
        other.close()


def test_a_regular_file_at_the_socket_path_is_named(make_daemon: DaemonFactory) -> None:
    daemon = make_daemon(start=False)
    daemon.socket.parent.mkdir(parents=True, exist_ok=True)
    daemon.socket.write_text("not a socket")
    refused, _ = posd_run(daemon.config)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and str(daemon.socket) in lines[0], refused.stderr[-2000:]
    assert "not a socket" in lines[0]
    assert daemon.socket.read_text() == "not a socket"


def test_a_stale_socket_file_is_replaced(make_daemon: DaemonFactory) -> None:
    daemon = make_daemon(start=False)
    listening(daemon.socket).close()  # bound, then its process died: nobody listens
    daemon.start()
    assert daemon.call("GET", "/v1/status")[0] == 200


def test_the_socket_passed_by_systemd_is_served_and_left_in_place(
    make_daemon: DaemonFactory,
) -> None:
    daemon = make_daemon(start=False)
    passed = listening(daemon.socket)  # what posd.socket holds: it outlives the daemon
    try:
        daemon.start(activated=passed)
        assert daemon.call("GET", "/v1/status")[0] == 200
        assert daemon.pay("activated-1")[0] == 201
        assert daemon.stop() == 0
        assert daemon.socket.exists()  # systemd's socket: never unlinked by the daemon
        again = make_daemon(start=False)
        again.start(activated=passed)  # a restart serves the same socket
        assert again.call("GET", "/v1/status")[0] == 200
        assert again.stop() == 0
    finally:
        passed.close()
