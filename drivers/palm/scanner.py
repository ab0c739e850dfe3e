"""The palm-scanner device class: what the daemon may ask of any palm-identity driver.

Drivers (the Amazon One adapter, its simulator, a future palm-vein reader...) implement this
ABC and are picked by name from `drivers.registry`; the daemon never sees a wire protocol.
`cancel()` may be called from any thread while `identify()` waits.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from drivers.base import Device
from drivers.palm.identity import IdentifyResult
from drivers.registry import PALM_SCANNER

DEFAULT_IDENTIFY_TIMEOUT_S = 30.0
MAX_IDENTIFY_TIMEOUT_S = 600.0


def check_identify_timeout(timeout: float) -> None:
    """Reject timeouts no driver should accept (0, negative, or longer than ten minutes)."""
    if not 0 < timeout <= MAX_IDENTIFY_TIMEOUT_S:
        raise ValueError(f"identify timeout must be in (0, {MAX_IDENTIFY_TIMEOUT_S:g}] seconds")


class PalmScanner(Device):
    device_class: ClassVar[str] = PALM_SCANNER

    @abstractmethod
    def identify(self, timeout: float = DEFAULT_IDENTIFY_TIMEOUT_S) -> IdentifyResult:
        """Arm the scanner and wait up to `timeout` seconds for a palm.

        Returns `Matched` (credential + confidence), `NoMatch`, `Cancelled` or `TimedOut`
        (no palm in time). Raises `DeviceTimeout` (the device stopped answering),
        `DeviceDisconnected` (gone, and not back before the deadline), `ProtocolError`,
        `DeviceInitError`/`DriverUnavailable` (cannot reach the device at all).
        """

    @abstractmethod
    def cancel(self) -> None:
        """End the pending `identify` with `Cancelled` (from any thread); no-op when none is
        pending."""
