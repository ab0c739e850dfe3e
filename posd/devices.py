"""The lane's devices, from config to a typed driver instance: the one way to build a device.

The loader (`build_device` by config name, or the typed `build_card_reader`/
`build_palm_scanner`) is what the CLI, the demo and the daemon use; it instantiates the
configured driver without opening it, and reports a value the driver refuses (`OptionError`,
a timeout of 0...) as a `ConfigError` naming the key too. The options themselves were checked
against the driver when the config was loaded (`posd.device_options`).
"""

from __future__ import annotations

from typing import TypeVar

from drivers.base import Device
from drivers.card.reader import CardReader
from drivers.errors import OptionError
from drivers.palm.scanner import PalmScanner
from drivers.registry import driver_class
from posd.config import Config
from posd.device_options import CARD_READER_KEY, PALM_SCANNER_KEY, device_class
from posd.errors import ConfigError

D = TypeVar("D", bound=Device)


def build_device(config: Config, name: str) -> Device:
    """The driver configured as `devices.NAME`, instantiated, not opened."""
    return _build(config, name, device_class(name, str(config.path)))


def build_card_reader(config: Config) -> CardReader:
    """The configured card reader (`[devices.card_reader]`), not opened."""
    return _build(config, CARD_READER_KEY, CardReader)


def build_palm_scanner(config: Config) -> PalmScanner:
    """The configured palm scanner (`[devices.palm_scanner]`), not opened."""
    return _build(config, PALM_SCANNER_KEY, PalmScanner)


def _build(config: Config, name: str, kind: type[D]) -> D:
    """Instantiate the configured driver of `kind`. Options were checked at config load.

    `ConfigError` if the device is not configured or the driver refuses an option's value;
    `DriverUnavailable` if the driver (or a library it needs) cannot be imported.
    """
    path, where = str(config.path), f"devices.{name}"
    settings = config.devices.get(name)
    if settings is None:
        raise ConfigError(path, where, f"no {kind.device_class} is configured")
    cls = driver_class(kind, settings.driver)
    try:
        return cls(**settings.options)
    except OptionError as error:
        raise ConfigError(path, f"{where}.{error.option}", error.reason) from None
    except (ValueError, TypeError) as error:
        raise ConfigError(path, where, f"driver {settings.driver!r} refused: {error}") from None
