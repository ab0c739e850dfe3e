"""What a technician's commands say while the daemon runs: `posd sync flush` ends at once on a
link that will never work as configured, and `posd devices` asks the daemon (which holds the
devices) instead of reporting them missing."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.card.simulator import CardReaderSimulator
from posd.cli.main import main
from posd.errors import DeviceCommandError
from tests.posd.daemon.conftest import SOURCE, DaemonFactory
from tests.posd.daemon.harness import Daemon, write_config
from tests.repo import REPO_ROOT
from tests.sync.faultproxy import FaultProxy

# Far beyond what the misconfigured flush may take: a flush that waits it out is the bug.
FLUSH_TIMEOUT_S = 60.0
AT_ONCE_S = 10.0
MISSING_BUS = "no-such-bus-i22"
PROGRESS_FLUSH_S = 3.0  # the --timeout below
POSD = [sys.executable, "-m", "posd"]


def _run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, Any]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def misconfigured(tmp_path: Path, reader: CardReaderSimulator, proxy: FaultProxy) -> Path:
    """A lane whose bus does not exist: its link goes `misconfigured` at the first send."""
    return write_config(
        tmp_path, card_port=reader.port, events_url=proxy.url, bus_name=MISSING_BUS, source=SOURCE
    )


def test_flush_through_the_daemon_ends_at_once_when_the_link_is_misconfigured(
    tmp_path: Path,
    own_reader: CardReaderSimulator,
    own_proxy: FaultProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = misconfigured(tmp_path, own_reader, own_proxy)
    daemon = Daemon(config).start()
    try:
        status, body = daemon.pay("flush-misconfigured-1")
        assert status == 201, body
        started = time.monotonic()
        code, result = _run_json(
            capsys, ["sync", "flush", "--config", str(config), "--timeout", str(FLUSH_TIMEOUT_S)]
        )
        elapsed = time.monotonic() - started
    finally:
        daemon.stop()
    assert elapsed < AT_ONCE_S, result
    assert code == 1
    assert result["via"] == "daemon"
    assert result["completed"] is False
    assert result["state"] == "misconfigured"
    assert "ResourceNotFoundException" in (result["last_error"] or "")
    assert result["pending"] >= 1


def test_the_flush_answer_names_the_link_state_and_its_error(
    tmp_path: Path, own_reader: CardReaderSimulator, own_proxy: FaultProxy
) -> None:
    config = misconfigured(tmp_path, own_reader, own_proxy)
    daemon = Daemon(config).start()
    try:
        assert daemon.pay("flush-misconfigured-2")[0] == 201
        started = time.monotonic()
        status, flushed = daemon.call("POST", "/v1/sync/flush", {"timeout_s": FLUSH_TIMEOUT_S})
        elapsed = time.monotonic() - started
    finally:
        daemon.stop()
    assert status == 200 and elapsed < AT_ONCE_S, flushed
    assert flushed["completed"] is False and flushed["pending"] >= 1
    assert flushed["link_state"] == "misconfigured"
    assert "ResourceNotFoundException" in (flushed["last_error"] or "")


def test_devices_while_the_daemon_runs_are_the_daemons_view(
    make_daemon: DaemonFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = make_daemon()
    code, result = _run_json(capsys, ["devices", "--config", str(daemon.config)])
    assert code == 0
    assert daemon.proc is not None
    assert result["source"] == "daemon"
    assert result["daemon_pid"] == daemon.proc.pid
    by_name = {row["name"]: row for row in result["devices"]}
    assert by_name["card_reader"]["state"] == "connected", result
    assert by_name["palm_scanner"]["state"] == "connected", result
    assert all(row["in_use_by"] == f"posd (pid {daemon.proc.pid})" for row in by_name.values())
    capsys.readouterr()
    assert main(["devices", "--config", str(daemon.config)]) == 0
    shown = capsys.readouterr().out
    assert f"in use by posd (pid {daemon.proc.pid})" in shown
    assert "not_found" not in shown
    # A round trip would fight the daemon for the device: refused, naming it.
    code = main(["devices", "test", "card_reader", "--config", str(daemon.config)])
    assert code == DeviceCommandError.exit_code
    assert f"in use by posd (pid {daemon.proc.pid})" in capsys.readouterr().err


def test_devices_without_a_daemon_probe_the_hardware(
    make_daemon: DaemonFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = make_daemon(start=False)
    code, result = _run_json(capsys, ["devices", "--config", str(daemon.config)])
    assert code == 0
    assert result["source"] == "hardware"
    by_name = {row["name"]: row for row in result["devices"]}
    assert by_name["card_reader"]["state"] == "connected", result


def test_flush_through_the_daemon_shows_progress_on_a_terminal(
    make_daemon: DaemonFactory, own_proxy: FaultProxy
) -> None:
    daemon = make_daemon()
    own_proxy.down()  # nothing can be delivered: the flush runs its whole (short) timeout
    assert daemon.pay("flush-progress-1")[0] == 201
    parent, child = pty.openpty()
    # A terminal of 80 columns (a new pty has none: the bar would be drawn 0 wide).
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        done = subprocess.run(
            [*POSD, "sync", "flush", "--config", str(daemon.config), "--timeout", "3"],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            stderr=child,
            text=True,
            timeout=PROGRESS_FLUSH_S + AT_ONCE_S,
            check=False,
        )
        os.close(child)
        drawn = _read_all(parent)
    finally:
        os.close(parent)
    assert done.returncode == 1, done.stdout
    assert "delivering" in drawn and "0/1" in drawn, drawn
    assert "completed" in done.stdout and "no" in done.stdout


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
