"""Small parts of the daemon on their own: the notifier and the repeated-error log."""

from __future__ import annotations

import socket
from pathlib import Path

import structlog

from posd.daemon.notify import Notifier
from posd.ratelog import RepeatedErrors

SENDS_TO_FILL_A_QUEUE = 5_000


def test_a_notify_socket_nobody_reads_never_blocks_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        assert notifier.watchdog_interval_s == 1.0
        results = [notifier.watchdog() for _ in range(SENDS_TO_FILL_A_QUEUE)]
        assert results[0] is True and results[-1] is False  # the queue filled; no hang
        assert receiver.recv(64) == b"WATCHDOG=1"


def test_abstract_notify_socket() -> None:
    name = f"posd-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready("up")
        assert receiver.recv(64) == b"READY=1\nSTATUS=up"


def test_repeated_errors_are_logged_once_then_summarised() -> None:
    now = [0.0]
    errors = RepeatedErrors(interval_s=60, clock=lambda: now[0])
    with structlog.testing.capture_logs() as logs:
        for _ in range(100):
            errors.failed("device.card_reader.unreachable", error="device_disconnected")
            now[0] += 1
        errors.recovered("device.card_reader.unreachable")
    events = [entry["event"] for entry in logs]
    assert events == [
        "device.card_reader.unreachable",
        "device.card_reader.unreachable.still_failing",
        "device.card_reader.unreachable.recovered",
    ]
    assert logs[1]["repeated"] == 60 and logs[2]["failures"] == 100
