"""systemd's notify protocol: plain datagrams to `$NOTIFY_SOCKET` (no libsystemd needed).

`@name` is a Linux abstract socket. Without `$NOTIFY_SOCKET` (not run by systemd) every call
is a no-op. A send that fails is reported to the caller's error log once, never raised: the
daemon must not stop because its supervisor went away.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"
USEC_PER_SECOND = 1_000_000


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get(NOTIFY_SOCKET_ENV) or None
        if address is not None and address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address
        self.watchdog_interval_s = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str) -> bool:
        """Send `KEY=value` lines; True if sent (or nothing to send to)."""
        if self._address is None:
            return True
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never block: a supervisor that does not read must not stall the main loop.
                sock.sendto(message.encode(), socket.MSG_DONTWAIT, self._address)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(ready="1", status=status)

    def status(self, status: str) -> bool:
        return self.send(status=status)

    def watchdog(self) -> bool:
        return self.send(watchdog="1")

    def stopping(self, status: str) -> bool:
        return self.send(stopping="1", status=status)


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half the watchdog timeout systemd asks for, or None when there is no watchdog."""
    usec = env.get(WATCHDOG_USEC_ENV, "")
    pid = env.get(WATCHDOG_PID_ENV)
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid is not None and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / USEC_PER_SECOND / 2
