"""What systemd's signals ask of a daemon's main loop (both `posd run` and `posd sync run`):
SIGTERM and SIGINT stop it, SIGHUP rereads the config. The handlers only set a flag and wake
the loop; the loop does the work in its own thread."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Signals:
    def __init__(self) -> None:
        self.wake = threading.Event()
        self.stop_requested = False
        self.reload_requested = False

    def install(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            self.stop_requested = True
            self.wake.set()

        def on_reload(signum: int, frame: FrameType | None) -> None:
            self.reload_requested = True
            self.wake.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_reload)

    def wait(self, timeout: float) -> None:
        """Until `timeout` passes or a signal came."""
        self.wake.wait(timeout)
        self.wake.clear()

    def take_reload(self) -> bool:
        """Whether a SIGHUP came since the last call."""
        asked, self.reload_requested = self.reload_requested, False
        return asked
