"""The driver table: (device class, driver name) -> "module:Class", imported on first use.

Config names a driver (`[devices.card_reader] driver = "serial"`); the daemon's device loader
(`posd.devices`) asks `driver_class(CardReader, "serial")` for it and gets the class typed as
the device class it asked for. Modules are imported lazily so that a missing optional library
(pyusb for the palm scanner, say) only breaks the driver that needs it, with a clear
`DriverUnavailable`, never the daemon's start-up. New device classes and drivers add a row
here (or call `register_driver`), nothing else changes. Modelled on python-can's
`can/interfaces/__init__.py`.
"""

from __future__ import annotations

import threading
from importlib import import_module
from typing import TypeVar

from drivers.base import Device
from drivers.errors import DriverUnavailable

CARD_READER = "card-reader"
PALM_SCANNER = "palm-scanner"

D = TypeVar("D", bound=Device)

_TABLE: dict[tuple[str, str], str] = {
    (CARD_READER, "serial"): "drivers.card.serial_reader:SerialCardReader",
    (CARD_READER, "simulated"): "drivers.card.simulated_reader:SimulatedCardReader",
    (CARD_READER, "hid-keyboard"): "drivers.card.hid_keyboard:HidKeyboardReader",
    (CARD_READER, "simulated-hid-keyboard"): (
        "drivers.card.hid_keyboard_sim:SimulatedHidKeyboardReader"
    ),
    (CARD_READER, "hid-msr"): "drivers.card.hid_msr:HidMsrReader",
    (CARD_READER, "simulated-hid-msr"): "drivers.card.hid_msr_sim:SimulatedHidMsrReader",
    (CARD_READER, "secure-msr"): "drivers.card.secure_msr:SecureMsrReader",
    (CARD_READER, "simulated-secure-msr"): "drivers.card.secure_msr_sim:SimulatedSecureMsrReader",
    (PALM_SCANNER, "amazon-one"): "drivers.palm.amazon_one:AmazonOneScanner",
    (PALM_SCANNER, "simulated"): "drivers.palm.simulated:SimulatedPalmScanner",
}
_LOCK = threading.Lock()


def register_driver(device_class: type[Device], name: str, target: str) -> None:
    """Add or replace a driver of `device_class`: `target` is "package.module:ClassName"."""
    if ":" not in target:
        raise ValueError("driver target must be 'module:Class'")
    with _LOCK:
        _TABLE[(device_class.device_class, name)] = target


def available_drivers(device_class: type[Device]) -> list[str]:
    """Driver names known for `device_class` (importable or not), sorted."""
    with _LOCK:
        return sorted(name for (cls, name) in _TABLE if cls == device_class.device_class)


def driver_class(device_class: type[D], name: str) -> type[D]:
    """Import and return the driver `name` of `device_class` (an ABC such as `CardReader`).

    `DriverUnavailable` if the name is unknown, its module (or a library it needs) cannot be
    imported, or the target is not a `device_class` driver.
    """
    kind = device_class.device_class
    with _LOCK:
        target = _TABLE.get((kind, name))
    if target is None:
        known = ", ".join(available_drivers(device_class)) or "none"
        raise DriverUnavailable(f"no {kind} driver named {name!r} (known: {known})")
    module_name, _, attribute = target.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as error:
        missing = error.name or module_name
        raise DriverUnavailable(
            f"{kind} driver {name!r} needs module {missing!r}, which is not installed"
        ) from error
    cls = getattr(module, attribute, None)
    if not (isinstance(cls, type) and issubclass(cls, device_class)):
        raise DriverUnavailable(f"{target} is not a {kind} driver")
    return cls
