"""Device options checked against the driver's constructor, once, when the config is loaded.

Config keys name device classes (`card_reader` -> `CardReader`...). An unknown, missing or
mistyped option is a `ConfigError` naming `devices.NAME.KEY`, not a crash when the device is
opened. `posd.config` calls `check_device`; building a device from a loaded config is
`posd.devices`' job (which imports the config: this module must not, or the two would import
each other). Drivers are imported lazily through `drivers.registry`: a missing optional
library (pyusb, libusb) is a `DriverUnavailable` for that device only.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.base import Device
from drivers.card.reader import CardReader
from drivers.errors import DriverUnavailable
from drivers.palm.scanner import PalmScanner
from drivers.registry import available_drivers, driver_class
from posd.errors import ConfigError
from posd.typecheck import NotSettable, coerce, type_name

CARD_READER_KEY = "card_reader"
PALM_SCANNER_KEY = "palm_scanner"

# Config key -> the device class its drivers implement.
DEVICE_CLASSES: dict[str, type[Device]] = {
    CARD_READER_KEY: CardReader,
    PALM_SCANNER_KEY: PalmScanner,
}


@dataclass(frozen=True)
class DriverOptions:
    """What a driver's constructor takes: option name -> annotation, and the required ones."""

    accepted: dict[str, Any]
    required: frozenset[str]


def driver_options(cls: type[Device]) -> DriverOptions:
    """The keywords the driver's constructor accepts, and those it cannot do without.

    Follows `**options` up the class hierarchy (a simulated driver passes the rest on to the
    real driver it extends). Annotations that cannot be resolved count as Any. Only the
    driver's own constructor says what is required: a parent's required parameter may be one
    the subclass supplies itself.
    """
    accepted: dict[str, Any] = {}
    required: set[str] = set()
    own = True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            hints = typing.get_type_hints(init)
        except (NameError, TypeError):
            hints = {}
        passes_rest_on = False
        for parameter in list(inspect.signature(init).parameters.values())[1:]:
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                passes_rest_on = True
            elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
                accepted.setdefault(parameter.name, hints.get(parameter.name, Any))
                if own and parameter.default is inspect.Parameter.empty:
                    required.add(parameter.name)
        own = False
        if not passes_rest_on:
            break
    return DriverOptions(accepted, frozenset(required))


def device_class(name: str, path: str) -> type[Device]:
    """The device class configured under `devices.NAME`; `ConfigError` for an unknown name."""
    try:
        return DEVICE_CLASSES[name]
    except KeyError:
        known = ", ".join(sorted(DEVICE_CLASSES))
        raise ConfigError(path, f"devices.{name}", f"unknown device (known: {known})") from None


def check_device(name: str, driver: str, options: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The device's options checked against its driver; raises ConfigError naming the key."""
    where = f"devices.{name}"
    kind = device_class(name, path)
    drivers = available_drivers(kind)
    if driver not in drivers:
        raise ConfigError(
            path, f"{where}.driver", f"unknown driver {driver!r} (known: {', '.join(drivers)})"
        )
    try:
        cls = driver_class(kind, driver)
    except DriverUnavailable:
        return dict(options)  # its library is missing: `posd devices` reports it as unavailable
    signature = driver_options(cls)
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in signature.accepted:
            known = ", ".join(sorted(signature.accepted))
            raise ConfigError(
                path, f"{where}.{key}", f"unknown option for driver {driver!r} (known: {known})"
            )
        annotation = signature.accepted[key]
        try:
            checked[key] = coerce(annotation, value)
        except NotSettable:
            raise ConfigError(path, f"{where}.{key}", "cannot be set in a config file") from None
        except TypeError:
            raise ConfigError(
                path, f"{where}.{key}", f"expected {type_name(annotation)}, got {value!r}"
            ) from None
        if key in signature.required and isinstance(value, str) and not value.strip():
            # `port = ""` is a string, but no device: say so here, not when the daemon opens it
            raise ConfigError(path, f"{where}.{key}", f"required by driver {driver!r}: empty")
    missing = sorted(signature.required - set(options))
    if missing:
        raise ConfigError(path, f"{where}.{missing[0]}", f"required by driver {driver!r}")
    return checked
