"""What the delivery daemon tells the capture daemon and the CLI: its status, in a file.

`posd sync run` rewrites `STATE_DIR/delivery.status` (atomically: a temporary file renamed
over it) every tick with its engine's `SyncStatus`, its PID and when it wrote. Readers take
the file as the truth while it is fresh: older than `STALE_AFTER_SECONDS`, or missing, and
delivery is "not running" (killed, stopped, never started), whatever the last file said.
A file, not a socket: the capture daemon's payments and status never wait on delivery, and a
stopped delivery daemon leaves its last words for the technician.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from posd.api_answers import DeliveryAnswer
from posd.journal.files import DELIVERY_STATUS_FILE, set_mode
from sync.acknowledgement import Acknowledgement
from sync.status import SyncStatus
from sync.timestamps import rfc3339

# The delivery daemon writes at least every second; three missed writes and it is not running.
STALE_AFTER_SECONDS = 3.0
STATUS_FILE_MODE = 0o640
# A payment asks for the link state: the file is read at most this often.
CACHE_SECONDS = 0.1
NOT_RUNNING = "the delivery daemon (posd sync run) is not running: nothing is being delivered"
NEVER_STARTED = "never started"


@dataclass(frozen=True)
class DeliveryReport:
    """The delivery daemon's last word: its engine's status, who wrote it and when."""

    pid: int
    started_at: float  # UNIX seconds
    written_at: float
    status: SyncStatus
    stopped: bool = False  # its last word before a clean stop

    def fresh(self, now: float) -> bool:
        return not self.stopped and 0 <= now - self.written_at <= STALE_AFTER_SECONDS


def status_path(state_dir: Path) -> Path:
    return state_dir / DELIVERY_STATUS_FILE


def write_report(state_dir: Path, report: DeliveryReport) -> None:
    """Replace the status file with `report` (readers see the old file or the new one)."""
    path = status_path(state_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = json.dumps(asdict(report), separators=(",", ":")).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, STATUS_FILE_MODE)
    try:
        set_mode(fd, STATUS_FILE_MODE)  # the capture daemon's user reads it through the group
        os.write(fd, payload)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_report(state_dir: Path) -> DeliveryReport | None:
    """The last report, or None if there is none or it cannot be read as one."""
    try:
        raw = json.loads(status_path(state_dir).read_bytes())
        return _report_of(raw)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _report_of(raw: dict[str, Any]) -> DeliveryReport:
    status = dict(raw["status"])
    status["acknowledged"] = Acknowledgement(**status.get("acknowledged") or {})
    known = {field.name for field in fields(SyncStatus)}
    return DeliveryReport(
        pid=int(raw["pid"]),
        started_at=float(raw["started_at"]),
        written_at=float(raw["written_at"]),
        stopped=bool(raw.get("stopped", False)),
        status=SyncStatus(**{key: value for key, value in status.items() if key in known}),
    )


def not_running_status(last: SyncStatus | None = None) -> SyncStatus:
    """What delivery's status is while no delivery daemon runs: nothing in flight, the link
    unknown, the error saying so; the last known counts kept."""
    return SyncStatus(
        state="unknown",
        offline_since=None,
        last_success=None if last is None else last.last_success,
        last_error=NOT_RUNNING,
        pending=0 if last is None else last.pending,
        quarantined=0 if last is None else last.quarantined,
        oldest_pending_age_seconds=None,
        in_flight=0,
        in_flight_limit=0,
        delivered_since_start=0,
        quarantined_since_start=0,
        read_timeout_seconds=0.0,
        entries_per_request=0,
        slow_endpoint=False,
        acknowledged=Acknowledgement() if last is None else last.acknowledged,
    )


@dataclass(frozen=True)
class DeliveryPresence:
    """Whether the delivery daemon runs, as the capture daemon and the CLI show it."""

    running: bool
    pid: int | None
    started_at: float | None
    last_seen: float | None  # when it last wrote its status

    def answer(self) -> DeliveryAnswer:
        return {
            "running": self.running,
            "pid": self.pid,
            "started_at": None if self.started_at is None else rfc3339(self.started_at),
            "last_seen": None if self.last_seen is None else rfc3339(self.last_seen),
        }


def presence_in(state_dir: Path) -> DeliveryPresence:
    """Whether a delivery daemon runs on `state_dir`, from its status file."""
    report = read_report(state_dir)
    if report is None:
        return DeliveryPresence(False, None, None, None)
    return DeliveryPresence(
        report.fresh(time.time()), report.pid, report.started_at, report.written_at
    )


class DeliveryPeer:
    """The capture daemon's view of the delivery daemon, read from its status file."""

    def __init__(self, state_dir: Path, cache_s: float = CACHE_SECONDS) -> None:
        self._state_dir = state_dir
        self._cache_s = cache_s
        self._read_at = float("-inf")
        self._report: DeliveryReport | None = None

    def _current(self) -> DeliveryReport | None:
        now = time.monotonic()
        if now - self._read_at >= self._cache_s:
            self._report, self._read_at = read_report(self._state_dir), now
        return self._report

    def presence(self) -> DeliveryPresence:
        """Read now, not from the cache: a flush asks whether to wait at all."""
        return presence_in(self._state_dir)

    def status(self) -> SyncStatus:
        report = self._current()
        if report is None:
            return not_running_status()
        if not report.fresh(time.time()):
            return not_running_status(report.status)
        return report.status
