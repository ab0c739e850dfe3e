"""The state dir's lock and the API's listener, in-process: who may hold, bind and unlink."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from demo.devconfig import DevConfig
from posd.cli.main import main
from posd.daemon.listener import (
    ActivationError,
    SocketPathError,
    bind_here,
    from_systemd,
    open_listener,
)
from posd.daemon.lock import LOCK_FILE, StateDirLock, StateDirLocked
from posd.journal import Journal


def test_the_lock_is_exclusive_names_its_holder_and_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with StateDirLock.acquire(state):
        lock_file = state / LOCK_FILE
        assert lock_file.read_text().strip() == str(os.getpid())
        # The CLI takes both daemons' locks as either daemon's user: group read-write only.
        assert stat.S_IMODE(lock_file.stat().st_mode) == 0o660
        with pytest.raises(StateDirLocked) as refused:
            StateDirLock.acquire(state)  # flock: per open file, so even this process is refused
        assert refused.value.holder == os.getpid()
        assert f"pid {os.getpid()}" in str(refused.value)
        assert refused.value.exit_code != 0
    with StateDirLock.acquire(state):  # released: the next one may take it
        pass


def test_binding_needs_the_lock(tmp_path: Path) -> None:
    lock = StateDirLock.acquire(tmp_path / "state")
    lock.release()
    with pytest.raises(SocketPathError):
        bind_here(tmp_path / "api.sock", None, lock)


def test_close_unlinks_only_the_socket_bound_here(tmp_path: Path) -> None:
    path = tmp_path / "run" / "api.sock"
    with StateDirLock.acquire(tmp_path / "state") as lock:
        listener = bind_here(path, None, lock)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        path.unlink()
        someone_else = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        someone_else.bind(str(path))
        listener.close()
        assert path.exists()  # not the file bound here: left alone
        someone_else.close()


def test_a_live_socket_or_a_file_at_the_path_is_refused_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    with StateDirLock.acquire(tmp_path / "state") as lock:
        live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        live.bind(str(path))
        live.listen(1)
        with pytest.raises(SocketPathError, match=str(path)):
            bind_here(path, None, lock)
        assert path.exists()
        live.close()
        path.unlink()
        path.write_text("x")
        with pytest.raises(SocketPathError, match="is not a socket"):
            bind_here(path, None, lock)


def test_systemd_sockets_are_taken_only_when_meant_for_this_process(tmp_path: Path) -> None:
    assert from_systemd({"LISTEN_PID": "1", "LISTEN_FDS": "1"}) is None
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}
    with pytest.raises(ActivationError, match="2 sockets"):
        from_systemd(env)
    assert env == {}  # unset once read: no child inherits them
    with StateDirLock.acquire(tmp_path / "state") as lock:
        listener = open_listener(tmp_path / "api.sock", None, lock, environ={})
        assert not listener.activated
        listener.close()
        assert not (tmp_path / "api.sock").exists()


def test_the_cli_commands_that_deliver_or_reset_refuse_a_locked_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    Journal.open(state).close()
    config = DevConfig(
        store_id="s", terminal_id="t", state_dir=state, api={"socket": str(tmp_path / "no.sock")}
    ).write(tmp_path / "posd.toml")
    with StateDirLock.acquire(state):  # as a running daemon holds it
        capsys.readouterr()
        for command in (
            ["sync", "flush", "--config", str(config)],
            ["journal", "reset", "--accept-loss", "--state-dir", str(state)],
        ):
            assert main(command) == StateDirLocked.exit_code
            assert f"pid {os.getpid()}" in capsys.readouterr().err
