"""The driver table: (device class, driver name) -> "module:Class", imported on first use.

Config names a driver (`card_reader.driver = "serial"`); the daemon asks `create_device` for it.
Modules are imported lazily so that a missing optional library (pyusb for the palm scanner, say)
only breaks the driver that needs it, with a clear `DriverUnavailable`, never the daemon's
start-up. New device classes and drivers add a row here (or call `register_driver`), nothing
else changes. Modelled on python-can's `can/interfaces/__init__.py`.
"""

from __future__ import annotations

import threading
from importlib import import_module
from typing import Any

from drivers.base import Device
from drivers.errors import DriverUnavailable

CARD_READER = "card-reader"
PALM_SCANNER = "palm-scanner"

_TABLE: dict[tuple[str, str], str] = {
    (CARD_READER, "serial"): "drivers.card.serial_reader:SerialCardReader",
    (CARD_READER, "simulated"): "drivers.card.simulated_reader:SimulatedCardReader",
    (PALM_SCANNER, "amazon-one"): "drivers.palm.amazon_one:AmazonOneScanner",
    (PALM_SCANNER, "simulated"): "drivers.palm.simulated:SimulatedPalmScanner",
}
_LOCK = threading.Lock()


def register_driver(device_class: str, name: str, target: str) -> None:
    """Add or replace a driver: `target` is "package.module:ClassName"."""
    if ":" not in target:
        raise ValueError("driver target must be 'module:Class'")
    with _LOCK:
        _TABLE[(device_class, name)] = target


def available_drivers(device_class: str) -> list[str]:
    """Driver names known for `device_class` (importable or not), sorted."""
    with _LOCK:
        return sorted(name for (cls, name) in _TABLE if cls == device_class)


def load_driver(device_class: str, name: str) -> type[Device]:
    """Import and return the driver class; `DriverUnavailable` if unknown or not importable.

    Each device class's module offers a typed wrapper (`drivers.card.reader.card_reader_driver`).
    """
    with _LOCK:
        target = _TABLE.get((device_class, name))
    if target is None:
        known = ", ".join(available_drivers(device_class)) or "none"
        raise DriverUnavailable(f"no {device_class} driver named {name!r} (known: {known})")
    module_name, _, attribute = target.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as error:
        missing = error.name or module_name
        raise DriverUnavailable(
            f"{device_class} driver {name!r} needs module {missing!r}, which is not installed"
        ) from error
    cls = getattr(module, attribute, None)
    if not (
        isinstance(cls, type)
        and issubclass(cls, Device)
        and getattr(cls, "device_class", None) == device_class
    ):
        raise DriverUnavailable(f"{target} is not a {device_class} driver")
    return cls


def create_device(device_class: str, name: str, **options: Any) -> Device:
    """Instantiate the named driver with `options` from config (not opened yet)."""
    return load_driver(device_class, name)(**options)
