"""`posd run` as a real subprocess for tests: its config, its notify socket, its API client.

The card reader is the simulator, run in the test process on a pty (so tests can hold cards,
unplug and replug it); the daemon opens it through the real `serial` driver. The palm scanner
is the `simulated` driver inside the daemon. Delivery goes through the fault proxy to moto.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from demo.devconfig import DevConfig, Table, serial_card_reader, simulated_palm
from posd.api_client import PAYMENT_ANSWER_TIMEOUT_S, DaemonClient
from tests.repo import REPO_ROOT

REPO = REPO_ROOT
READY_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 25.0
WATCHDOG_USEC = 400_000  # the daemon pings every 0.2 s: quick to see in a test
# systemd's side of socket activation: the socket moved to fd 3, LISTEN_PID the daemon's own
# PID (the same process after exec), LISTEN_FDS=1.
ACTIVATE = [
    sys.executable,
    "-c",
    "import os, sys; fd = int(sys.argv[1]); os.dup2(fd, 3); os.close(fd);"
    " os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1');"
    " os.execv(sys.argv[2], sys.argv[2:])",
]

FAST_SYNC = {
    "connect_timeout_seconds": 0.5,
    "read_timeout_seconds": 1.0,
    "max_read_timeout_seconds": 1.0,
    "lease_seconds": 3.0,
    "backoff_base_seconds": 0.02,
    "backoff_cap_seconds": 0.2,
    "offline_after_failures": 2,
    "probe_min_seconds": 0.05,
    "probe_max_seconds": 0.3,
    "idle_poll_seconds": 0.02,
    "watermark_poll_seconds": 0.2,
}


def write_config(
    directory: Path,
    *,
    card_port: str,
    events_url: str,
    bus_name: str,
    source: str,
    offline: Table | None = None,
    journal: Table | None = None,
    socket_group: str = "",
    watermark_table: str | None = None,
    card_reader: Table | None = None,
    payments: Table | None = None,
) -> Path:
    """The proven watermark is read from DynamoDB at `events_url` too (one endpoint, as
    through the store's VPN), from `watermark_table` (else the default name: absent there, so
    nothing is proven and the read's error shows in status). `card_reader` replaces the serial
    reader on `card_port`; `payments` adds keys to `[payments]`."""
    watermarks = {} if watermark_table is None else {"watermark_table": watermark_table}
    return (
        DevConfig(
            store_id="store-daemon",
            terminal_id="lane-09",
            api={"socket": "run/api.sock", "socket_group": socket_group},
            aws={
                "region": "us-east-1",
                "events_endpoint_url": events_url,
                "dynamodb_endpoint_url": events_url,
            },
            journal=journal or {},
            sync={"event_bus_name": bus_name, "source": source, **FAST_SYNC, **watermarks},
            offline=offline or {},
            devices={
                "card_reader": card_reader or serial_card_reader(card_port),
                "palm_scanner": simulated_palm(
                    {"alice": "tok-test-alice-0001"}, present="alice", scan_time_s=0.01
                ),
            },
        )
        .amended(payments=payments or {})
        .write(directory / "posd.toml")
    )


def pay(sock_path: Path, ref: str, amount: int = 1234, method: str = "card", **extra: Any):
    body = {"client_ref": ref, "amount_minor": amount, "currency": "EUR", "method": method}
    body.update(extra)
    reply = DaemonClient(sock_path, PAYMENT_ANSWER_TIMEOUT_S).exchange("POST", "/v1/payments", body)
    return reply.status, reply.body


class _Notified:
    """One daemon process as systemd would run it: its notify socket, its log."""

    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        self.notify_path = directory / f"{name}.notify.sock"
        self.log_path = directory / f"{name}.log"
        self.notes: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._notify: socket.socket | None = None
        self._log: Any = None

    def start(
        self, command: list[str], env: dict[str, str], cwd: Path, pass_fds: tuple[int, ...] = ()
    ) -> None:
        self.notify_path.unlink(missing_ok=True)
        self.notes = []
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(self.notify_path))
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            command,
            pass_fds=pass_fds,
            env={**env, "NOTIFY_SOCKET": str(self.notify_path)},
            stdout=self._log,
            stderr=self._log,
            cwd=cwd,
        )

    def read_notes(self, wait: float = 0.0) -> list[str]:
        """Collect notify datagrams (waiting up to `wait` for the first)."""
        if self._notify is None:
            return self.notes
        self._notify.settimeout(wait if wait > 0 else 0.001)
        try:
            while True:
                self.notes.append(self._notify.recv(4096).decode())
                self._notify.settimeout(0.001)
        except (TimeoutError, BlockingIOError):
            pass
        return self.notes

    def wait_note(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for note in self.read_notes(0.1):
                if text in note.splitlines():
                    return note
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.output()}")
        raise AssertionError(f"no {text} from {self.name} in {timeout} s: {self.output()}")

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        assert self.proc is not None
        code = self.proc.wait(EXIT_TIMEOUT_S)
        self.close()
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(EXIT_TIMEOUT_S)
        self.close()

    def close(self) -> None:
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Daemon:
    """The lane's two daemons as systemd runs them: `posd run` (capture: `proc`, its notes)
    and `posd sync run` (delivery: `sync_proc`, `delivery.notes`)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.dir = config.parent
        self.socket = self.dir / "run" / "api.sock"
        self.capture = _Notified(self.dir, "daemon")
        self.delivery = _Notified(self.dir, "delivery")
        self.extra_env: dict[str, str] = {}

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.capture.proc

    @property
    def sync_proc(self) -> subprocess.Popen[bytes] | None:
        return self.delivery.proc

    @property
    def notes(self) -> list[str]:
        return self.capture.notes

    @property
    def notify_path(self) -> Path:
        return self.capture.notify_path

    def _env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "WATCHDOG_USEC": str(WATCHDOG_USEC),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            **self.extra_env,
        }
        env.pop("WATCHDOG_PID", None)
        return env

    def start(
        self,
        wait_ready: bool = True,
        activated: socket.socket | None = None,
        delivery: bool = True,
    ) -> Daemon:
        """Start `posd run` and then (unless not `delivery`) `posd sync run`; `activated`: a
        listening socket passed to `posd run` as systemd would (fd 3)."""
        command = [sys.executable, "-m", "posd", "run", "--config", str(self.config)]
        if activated is not None:
            command = [*ACTIVATE, str(activated.fileno()), *command]
        self.capture.start(
            command,
            self._env(),
            self.dir,
            pass_fds=() if activated is None else (activated.fileno(),),
        )
        if wait_ready:
            self.wait_note("READY=1", READY_TIMEOUT_S)
            if delivery:
                self.start_delivery()
        return self

    def start_delivery(self, wait_ready: bool = True) -> Daemon:
        """Start `posd sync run` (the capture daemon has made the journal)."""
        command = [sys.executable, "-m", "posd", "sync", "run", "--config", str(self.config)]
        self.delivery.start(command, self._env(), self.dir)
        if wait_ready:
            self.delivery.wait_note("READY=1", READY_TIMEOUT_S)
        return self

    def read_notes(self, wait: float = 0.0) -> list[str]:
        return self.capture.read_notes(wait)

    def wait_note(self, text: str, timeout: float) -> str:
        return self.capture.wait_note(text, timeout)

    def output(self) -> str:
        return f"{self.capture.output()}\n--- delivery ---\n{self.delivery.output()}"

    def signal(self, signum: int) -> None:
        """`signum` to both daemons (as `systemctl reload posd.target` would)."""
        assert self.proc is not None
        self.proc.send_signal(signum)
        if self.delivery.running:
            assert self.sync_proc is not None
            self.sync_proc.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM both; capture's exit code (delivery's is `delivery_code`)."""
        self.capture.terminate()
        self.delivery.terminate()
        code = self.capture.wait()
        self.delivery_code = self.delivery.wait() if self.delivery.proc is not None else None
        return code

    def kill(self) -> None:
        """SIGKILL both (a power cut, as far as the processes can tell)."""
        self.kill_capture()
        self.kill_delivery()

    def kill_capture(self) -> None:
        if self.capture.proc is not None:
            self.capture.kill()

    def kill_delivery(self) -> None:
        if self.delivery.proc is not None:
            self.delivery.kill()

    def close(self) -> None:
        self.capture.close()
        self.delivery.close()

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        """One request and its answer as the register sees it: (status, JSON or text)."""
        reply = DaemonClient(self.socket, PAYMENT_ANSWER_TIMEOUT_S).exchange(
            method, path, body, raw=raw
        )
        return reply.status, reply.body

    def pay(self, ref: str, amount: int = 1234, method: str = "card", **extra: Any):
        return pay(self.socket, ref, amount, method, **extra)


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s")
