"""A simulated cable pulled while a flag file exists: the simulator's hands for a test that
runs the driver in another process (a daemon), where it cannot call `unplug()` itself."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from drivers.usb.sim_backend import SimulatedUsbBackend

CABLE_POLL_S = 0.05


class CableFlag(threading.Thread):
    """Unplugs `backend` while `flag` exists and plugs it back once the file is gone."""

    def __init__(self, flag: Path, backend: SimulatedUsbBackend, name: str) -> None:
        super().__init__(name=f"{name}-sim-cable", daemon=True)
        self._flag = flag
        self._backend = backend

    def run(self) -> None:
        while True:
            unplugged = self._flag.exists()
            if unplugged and self._backend.plugged:
                self._backend.unplug()
            elif not unplugged and not self._backend.plugged:
                self._backend.replug()
            time.sleep(CABLE_POLL_S)


def follow_flag(flag: str | None, backend: SimulatedUsbBackend, name: str) -> None:
    """Start a `CableFlag` when the driver's `unplugged_while` option names a file."""
    if flag:
        CableFlag(Path(flag), backend, name).start()
