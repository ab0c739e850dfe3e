"""The lane's device classes as config names them, and checking a device's config.

Config keys map to device classes of the driver table (`card_reader` -> "card-reader"...).
A device's options are checked against its driver's constructor when the config is loaded,
so a typo or a wrong type is a config error with file and key, not a crash when the device
is opened.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from drivers.base import Device
from drivers.card.reader import card_reader_driver
from drivers.errors import DriverUnavailable
from drivers.palm.scanner import palm_scanner_driver
from drivers.registry import CARD_READER, PALM_SCANNER, available_drivers
from posd.errors import ConfigError
from posd.typecheck import NotSettable, coerce, type_name

DriverLoader = Callable[[str], type[Device]]

# Config key -> (device class in the driver table, its typed driver loader).
DEVICE_CLASSES: dict[str, tuple[str, DriverLoader]] = {
    "card_reader": (CARD_READER, card_reader_driver),
    "palm_scanner": (PALM_SCANNER, palm_scanner_driver),
}


def driver_options(cls: type[Device]) -> dict[str, Any]:
    """Option name -> annotation for every keyword the driver's constructor accepts.

    Follows `**options` up the class hierarchy (a simulated driver passes the rest on to the
    real driver it extends). Annotations that cannot be resolved count as Any.
    """
    options: dict[str, Any] = {}
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
                options.setdefault(parameter.name, hints.get(parameter.name, Any))
        if not passes_rest_on:
            break
    return options


def check_device(name: str, driver: str, options: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The device's options checked against its driver; raises ConfigError naming the key."""
    where = f"devices.{name}"
    if name not in DEVICE_CLASSES:
        known = ", ".join(sorted(DEVICE_CLASSES))
        raise ConfigError(path, where, f"unknown device (known: {known})")
    device_class, loader = DEVICE_CLASSES[name]
    drivers = available_drivers(device_class)
    if driver not in drivers:
        raise ConfigError(
            path, f"{where}.driver", f"unknown driver {driver!r} (known: {', '.join(drivers)})"
        )
    try:
        cls = loader(driver)
    except DriverUnavailable:
        return dict(options)  # its library is missing: `posd devices` reports it as unavailable
    accepted = driver_options(cls)
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in accepted:
            known = ", ".join(sorted(accepted))
            raise ConfigError(
                path, f"{where}.{key}", f"unknown option for driver {driver!r} (known: {known})"
            )
        annotation = accepted[key]
        try:
            checked[key] = coerce(annotation, value)
        except NotSettable:
            raise ConfigError(path, f"{where}.{key}", "cannot be set in a config file") from None
        except TypeError:
            raise ConfigError(
                path, f"{where}.{key}", f"expected {type_name(annotation)}, got {value!r}"
            ) from None
    return checked
