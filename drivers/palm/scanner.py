"""The palm-scanner device class: what the daemon may ask of any palm-identity driver.

Drivers (the Amazon One adapter, its simulator, a future palm-vein reader...) implement this
ABC and are picked by name from `drivers.registry`; the daemon never sees a wire protocol.
`cancel()` may be called from any thread while `identify()` waits.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from drivers.base import Device
from drivers.errors import DriverUnavailable
from drivers.palm.identity import IdentifyResult
from drivers.registry import PALM_SCANNER, load_driver

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
        """Cancel the pending `identify` (it returns `Cancelled`); no-op when none is pending."""


def palm_scanner_driver(name: str) -> type[PalmScanner]:
    """The palm-scanner driver class named in config ("amazon-one", "simulated"...)."""
    cls = load_driver(PALM_SCANNER, name)
    if not issubclass(cls, PalmScanner):
        raise DriverUnavailable(f"{cls.__name__} is not a PalmScanner")
    return cls


def create_palm_scanner(name: str, **options: Any) -> PalmScanner:
    """Instantiate (not open) the named palm-scanner driver with config `options`."""
    return palm_scanner_driver(name)(**options)
