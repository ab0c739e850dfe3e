"""The lane's devices while the daemon runs: opened, watched and reopened in the background.

An absent or failing device never stops the daemon: it runs degraded, says so in status and
metrics, and keeps trying. A device that never opened is reopened with exponential backoff;
an open card reader is asked its state (`SS`) every `poll_s` while the lane is idle, which is
how an unplug is noticed between payments and how the driver's own reconnect runs. The palm
scanner has no cheap question to ask, so its health is what its last operation said.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from drivers.base import Backoff, Device
from drivers.card.reader import CardReader
from drivers.errors import DeviceError, DriverUnavailable
from drivers.palm.scanner import PalmScanner
from posd.api_answers import DeviceAnswer
from posd.config import Config
from posd.daemon.refusals import DEVICE_UNAVAILABLE, refuse
from posd.device_options import CARD_READER_KEY, PALM_SCANNER_KEY
from posd.devices import build_device
from posd.ratelog import RepeatedErrors
from posd.reader_encryption import p2pe_answer

DEVICE_POLL_SECONDS = 1.0
REOPEN_BACKOFF_INITIAL_S = 0.5
REOPEN_BACKOFF_MAX_S = 30.0

CONNECTED = "connected"
DISCONNECTED = "disconnected"
UNAVAILABLE = "unavailable"
NOT_CONFIGURED = "not_configured"

D = TypeVar("D", bound=Device)


@dataclass
class _Slot:
    name: str
    driver: str
    device: Device | None
    error: str | None = None
    delays: Iterator[float] = field(default_factory=lambda: iter(()))
    next_open_at: float = 0.0

    @property
    def state(self) -> str:
        if self.device is None:
            return UNAVAILABLE
        if not self.device.is_open:
            return DISCONNECTED
        return CONNECTED if self.device.health().connected else DISCONNECTED


class DeviceSupervisor:
    def __init__(
        self,
        config: Config,
        errors: RepeatedErrors,
        lane_busy: Callable[[], bool],
        poll_s: float = DEVICE_POLL_SECONDS,
    ) -> None:
        """Build (not open) every configured device; `ConfigError` if one is misconfigured."""
        self._errors = errors
        self._lane_busy = lane_busy
        self._poll_s = poll_s
        self._backoff = Backoff(REOPEN_BACKOFF_INITIAL_S, REOPEN_BACKOFF_MAX_S)
        self._slots: dict[str, _Slot] = {}
        for name, settings in config.devices.items():
            try:
                device: Device | None = build_device(config, name)
                error = None
            except DriverUnavailable as unavailable:
                device, error = None, f"{unavailable.code}: {unavailable}"
            self._slots[name] = _Slot(name, settings.driver, device, error)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devices", daemon=True)

    def start(self) -> DeviceSupervisor:
        """Try each device once now (so READY reports them as they are), then watch them."""
        for slot in self._slots.values():
            if slot.device is not None:
                self._try_open(slot, slot.device)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for slot in self._slots.values():
            if slot.device is not None:
                slot.device.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the lane's view ----------------------------------------------------------------

    def card_reader(self) -> CardReader:
        return self._usable(CARD_READER_KEY, CardReader)

    def palm_scanner(self) -> PalmScanner:
        return self._usable(PALM_SCANNER_KEY, PalmScanner)

    def _usable(self, name: str, kind: type[D]) -> D:
        slot = self._slots.get(name)
        if slot is None:
            raise refuse(DEVICE_UNAVAILABLE, f"this lane has no {name.replace('_', ' ')}")
        device = slot.device
        if slot.state != CONNECTED or not isinstance(device, kind):
            raise refuse(DEVICE_UNAVAILABLE, f"the {name.replace('_', ' ')} is {slot.state}")
        return device

    def connected(self) -> dict[str, bool]:
        return {name: slot.state == CONNECTED for name, slot in self._slots.items()}

    def snapshot(self) -> list[DeviceAnswer]:
        """Every configured device's state, for status pages (no card data in here)."""
        rows: list[DeviceAnswer] = []
        for name, slot in sorted(self._slots.items()):
            health = slot.device.health() if slot.device is not None else None
            info = health.info if health is not None else None
            rows.append(
                {
                    "name": name,
                    "driver": slot.driver,
                    "state": slot.state,
                    "connected": slot.state == CONNECTED,
                    "last_error": (health.last_error if health else None) or slot.error,
                    "model": info.model if info else None,
                    "firmware": info.firmware if info else None,
                    "serial_number": info.serial_number if info else None,
                    "reconnects": health.reconnects if health else 0,
                    "disconnects": health.disconnects if health else 0,
                    "disconnected_since": health.disconnected_since if health else None,
                    "p2pe": p2pe_answer(slot.device),
                }
            )
        return rows

    # -- background -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            for slot in self._slots.values():
                if self._stop.is_set():
                    return
                if slot.device is None:
                    continue
                if not slot.device.is_open:
                    self._try_open(slot, slot.device)
                elif isinstance(slot.device, CardReader) and not self._lane_busy():
                    self._poll_reader(slot, slot.device)
            self._stop.wait(self._poll_s)

    def _try_open(self, slot: _Slot, device: Device) -> None:
        now = time.monotonic()
        if now < slot.next_open_at:
            return
        try:
            device.open()
        except DeviceError as error:
            slot.error = f"{error.code}: {error}"
            if slot.next_open_at == 0.0:
                slot.delays = self._backoff.delays()
            slot.next_open_at = now + next(slot.delays)
            self._errors.failed(f"device.{slot.name}.open_failed", error=slot.error)
            return
        slot.error, slot.next_open_at = None, 0.0
        self._errors.recovered(f"device.{slot.name}.open_failed")

    def _poll_reader(self, slot: _Slot, reader: CardReader) -> None:
        key = f"device.{slot.name}.unreachable"
        try:
            reader.status()
        except DeviceError as error:
            self._errors.failed(key, error=error.code)
            return
        self._errors.recovered(key)

    def cancel_all(self) -> None:
        """End any pending read or identify on every open device (from any thread)."""
        for slot in self._slots.values():
            device = slot.device
            if isinstance(device, CardReader | PalmScanner) and device.is_open:
                device.cancel()
