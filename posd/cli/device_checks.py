"""`posd devices [--json]` and `posd devices test NAME [--json]`: the lane's devices (the
work; the parser is in `devices_cmd`).

While a daemon answers on the API socket it holds the devices (their locks): listing shows the
daemon's view of each (`GET /v1/devices`), "in use by posd (pid N)", and `test` refuses,
naming the daemon. Without one both commands open the configured devices directly. Listing
opens each device, reads its health and identity, and closes it; `test` does one round trip:
a palm scanner is armed and waits for a palm (`--timeout`), a card reader is asked who it is
and what state it is in. A device that answered is exit 0 whatever the outcome (match, no
match, timeout); a device error is a clear one-line message and exit 3. Credentials are
shown masked, never in full.

Each card reader is shown with its USB ids (from the config, for the USB readers), serial and
firmware (what the device says), and whether it encrypts (P2PE); an encrypting reader whose
DUKPT counter is nearly spent is flagged with the fix (`posd.reader_encryption`). An
encrypted test read shows the masked fields, the KSN and the encrypted tracks' lengths only.
"""

from __future__ import annotations

import argparse
import textwrap
import time
from typing import Any

from drivers.base import Device, DeviceInfo, Health
from drivers.card.reader import CardReader
from drivers.card.results import CardRead, EncryptedCardRead
from drivers.errors import DeviceError, DeviceInitError, DriverUnavailable
from drivers.palm.identity import Matched
from drivers.palm.scanner import MAX_IDENTIFY_TIMEOUT_S, PalmScanner
from posd.api_answers import DeviceAnswer, P2peAnswer
from posd.api_client import connect
from posd.cli.output import TABLE_WIDTH, emit, key_values, table
from posd.config import DEFAULT_CONFIG_PATH, Config, load_config
from posd.currency import format_amount
from posd.device_options import DEVICE_CLASSES
from posd.devices import build_device
from posd.errors import ConfigError, DeviceCommandError, UsageError
from posd.reader_encryption import (
    REINJECT_FIX,
    encrypted_fields,
    encryption_label,
    exhaustion_warning,
    p2pe_answer,
)

DEFAULT_TEST_TIMEOUT_S = 10.0
TEST_AMOUNT_MINOR = 1  # the smallest amount: a test read, never a payment
TEST_CURRENCY = "EUR"
USB_ID_OPTIONS = ("vendor_id", "product_id")


def _info(info: DeviceInfo | None) -> dict[str, str] | None:
    if info is None:
        return None
    return {
        "model": info.model,
        "firmware": info.firmware,
        "serial_number": info.serial_number,
        "driver": info.driver,
        "port": info.port,
    }


def _health(health: Health) -> dict[str, Any]:
    return {
        "connected": health.connected,
        "last_error": health.last_error,
        "reconnects": health.reconnects,
        "disconnects": health.disconnects,
    }


def _state(error: BaseException) -> str:
    if isinstance(error, DriverUnavailable):
        return "unavailable"
    if isinstance(error, DeviceInitError):
        return "not_found"
    if isinstance(error, ConfigError):
        return "misconfigured"
    return "error"


def _message(error: BaseException) -> str:
    """The error and its cause: "no such device" and "permission denied" need different
    fixes (plug it in / add the daemon's user to the device's group)."""
    code = getattr(error, "code", "error")
    cause = error.__cause__
    why = f" ({cause})" if cause is not None and str(cause) not in str(error) else ""
    return f"{code}: {error}{why}"


def usb_id(config: Config, name: str) -> str | None:
    """`vvvv:pppp` for a device selected by USB ids in the config, else None."""
    options = config.devices[name].options
    vendor, product = (options.get(key) for key in USB_ID_OPTIONS)
    if not isinstance(vendor, int) or not isinstance(product, int):
        return None
    return f"{vendor:04x}:{product:04x}"


def probe(config: Config, name: str) -> dict[str, Any]:
    """Open, read health and identity, close. Never raises for a device problem."""
    settings = config.devices[name]
    row: dict[str, Any] = {
        "name": name,
        "class": DEVICE_CLASSES[name].device_class if name in DEVICE_CLASSES else None,
        "driver": settings.driver,
        "usb_id": usb_id(config, name),
        "state": "connected",
        "info": None,
        "health": None,
        "p2pe": None,
        "error": None,
    }
    try:
        with build_device(config, name) as device:
            health = device.health()
            p2pe = p2pe_answer(device)
    except (DeviceError, ConfigError) as error:
        row.update(state=_state(error), error=_message(error))
        return row
    row.update(
        state="connected" if health.connected else "disconnected",
        info=_info(health.info),
        health=_health(health),
        p2pe=p2pe,
    )
    return row


def warnings(rows: list[dict[str, Any]]) -> list[str]:
    """One line per reader whose DUKPT counter is nearly spent."""
    lines = (exhaustion_warning(row["name"], row.get("p2pe")) for row in rows)
    return [line for line in lines if line is not None]


# -- posd devices -------------------------------------------------------------------------


def list_devices(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    client = connect(config.api.socket)
    result: dict[str, Any]
    if client is not None:
        answer = client.devices()
        holder = in_use_by(answer["pid"])
        result = {
            "config": str(config.path),
            "source": "daemon",
            "daemon_pid": answer["pid"],
            "devices": [_from_daemon(config, device, holder) for device in answer["devices"]],
        }
    else:
        result = {
            "config": str(config.path),
            "source": "hardware",
            "daemon_pid": None,
            "devices": [
                {**probe(config, name), "in_use_by": None} for name in sorted(config.devices)
            ],
        }
    result["warnings"] = warnings(result["devices"])
    result["fix"] = REINJECT_FIX if result["warnings"] else None
    emit(result, args.json, _render_list)
    return 0


def in_use_by(pid: int) -> str:
    return f"posd (pid {pid})"


def _from_daemon(config: Config, device: DeviceAnswer, holder: str) -> dict[str, Any]:
    """A row of the daemon's view, in the shape a probe's row has."""
    name = device["name"]
    return {
        "name": name,
        "class": DEVICE_CLASSES[name].device_class if name in DEVICE_CLASSES else None,
        "driver": device["driver"],
        "usb_id": usb_id(config, name) if name in config.devices else None,
        "state": device["state"],
        "info": {
            "model": device["model"],
            "firmware": device["firmware"],
            "serial_number": device["serial_number"],
        },
        "health": {
            "connected": device["connected"],
            "last_error": device["last_error"],
            "reconnects": device["reconnects"],
            "disconnects": device["disconnects"],
        },
        "p2pe": device.get("p2pe"),
        "error": device["last_error"],
        "in_use_by": holder,
    }


def _render_list(result: dict[str, Any]) -> str:
    if not result["devices"]:
        return f"no devices configured in {result['config']}"
    rows = []
    for device in result["devices"]:
        info = device["info"] or {}
        rows.append(
            (
                device["name"],
                device["class"] or "-",
                device["driver"],
                device["state"],
                device.get("usb_id") or "-",
                info.get("model") or "-",
                info.get("firmware") or "-",
                info.get("serial_number") or "-",
                encryption_label(device.get("p2pe")),
                info.get("port") or device["error"] or "-",
            )
        )
    headers = (
        "NAME",
        "CLASS",
        "DRIVER",
        "STATE",
        "USB ID",
        "MODEL",
        "FIRMWARE",
        "SERIAL",
        "ENCRYPTION",
        "PORT/ERROR",
    )
    shown = table(rows, headers)
    if result.get("warnings"):
        shown += "\n\n" + _warning_lines(result["warnings"], result["fix"])
    if result["daemon_pid"] is not None:
        pid = result["daemon_pid"]
        return (
            f"in use by {in_use_by(pid)}: the daemon's view (its devices' locks are held; "
            f"to open them here, stop it first)\n{shown}"
        )
    return shown


# -- posd devices test NAME ---------------------------------------------------------------


def test_device(args: argparse.Namespace) -> int:
    config = load_config(getattr(args, "config", DEFAULT_CONFIG_PATH))
    name: str = args.name
    if name not in config.devices:
        known = ", ".join(sorted(config.devices)) or "none"
        raise UsageError(f"no device named {name!r} in {config.path} (configured: {known})")
    if not 0 < args.timeout <= MAX_IDENTIFY_TIMEOUT_S:
        raise UsageError(f"--timeout must be in (0, {MAX_IDENTIFY_TIMEOUT_S:g}] seconds")
    client = connect(config.api.socket)
    if client is not None:
        pid = client.devices()["pid"]
        raise DeviceCommandError(
            f"{name} is in use by {in_use_by(pid)}: stop the daemon to test it here "
            "(`posd devices` shows the daemon's view of it)"
        )
    started = time.monotonic()
    try:
        with build_device(config, name) as device:
            result = _round_trip(device, args.timeout)
            health = device.health()
    except DeviceError as error:
        raise DeviceCommandError(f"{name}: {_message(error)}") from None
    result.update(
        name=name,
        driver=config.devices[name].driver,
        ok=True,
        elapsed_s=round(time.monotonic() - started, 3),
        info=_info(health.info),
        health=_health(health),
    )
    emit(result, getattr(args, "json", False), _render_test)
    return 0


def _round_trip(device: Device, timeout: float) -> dict[str, Any]:
    """Palm scanner: identify (waits for a palm). Card reader: identify + status."""
    if isinstance(device, PalmScanner):
        outcome = device.identify(timeout)
        result: dict[str, Any] = {"class": device.device_class, "outcome": str(outcome.outcome)}
        if isinstance(outcome, Matched):
            result.update(credential=outcome.credential.masked(), confidence=outcome.confidence)
        return result
    if isinstance(device, CardReader):
        # A real read, armed with a test amount: what the customer would do, masked; nothing
        # is journaled or sent.
        state = str(device.status())
        read = device.read_card(TEST_AMOUNT_MINOR, TEST_CURRENCY, timeout)
        result = {
            "class": device.device_class,
            "outcome": str(read.outcome),
            "state": state,
            "test_amount": format_amount(TEST_AMOUNT_MINOR, TEST_CURRENCY),
        }
        if isinstance(read, CardRead):
            result.update(read.card.clear_metadata())
        elif isinstance(read, EncryptedCardRead):
            result.update(encrypted_fields(read.card))
        result["p2pe"] = p2pe_answer(device)
        return result
    raise UsageError(f"no round trip is defined for {type(device).device_class} devices")


def _render_test(result: dict[str, Any]) -> str:
    info = result["info"] or {}
    summary: dict[str, Any] = {
        "device": f"{result['name']} ({result['class']}, driver {result['driver']})",
        "outcome": result["outcome"],
        **{
            k: result[k]
            for k in (
                "credential",
                "confidence",
                "state",
                "brand",
                "masked_pan",
                "entry_mode",
                "card_data",
                "ksn",
                "scheme",
                "format",
            )
            if k in result
        },
        "encryption": encryption_label(_p2pe_of(result)),
        "encrypted tracks": ", ".join(
            f"track {t['track']} ({t['length']} bytes)" for t in result.get("encrypted_tracks", [])
        )
        or None,
        "model": info.get("model", "-"),
        "firmware": info.get("firmware", "-"),
        "serial": info.get("serial_number", "-"),
        "port": info.get("port", "-"),
        "elapsed (s)": result["elapsed_s"],
    }
    shown = key_values(summary)
    warning = exhaustion_warning(result["name"], _p2pe_of(result))
    return shown if warning is None else f"{shown}\n{_warning_lines([warning], REINJECT_FIX)}"


def _warning_lines(warnings: list[str], fix: str) -> str:
    """WARN lines and the fix, wrapped to the tables' width."""
    lines = [f"WARN {line}" for line in warnings] + [f"fix: {fix}"]
    return "\n".join(textwrap.fill(line, TABLE_WIDTH, subsequent_indent="  ") for line in lines)


def _p2pe_of(result: dict[str, Any]) -> P2peAnswer | None:
    p2pe: P2peAnswer | None = result.get("p2pe")
    return p2pe
