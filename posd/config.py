"""Configuration: one TOML file, validated into typed, frozen objects.

Every problem is a `ConfigError` naming the file, the key (dotted path) and what was
expected; unknown keys are errors too (a typo must not silently fall back to a default).
Tables map onto dataclasses by field name and annotated type, so the dataclass *is* the
schema, and `config/posd.toml` documents it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from posd.card_data import CARD_DATA_MODES, CLEAR, check_card_data, check_key_ref
from posd.currency import is_active
from posd.device_options import CARD_READER_KEY, check_device
from posd.errors import ConfigError
from posd.identity import IdentitySettings, check_identity
from posd.journal.settings import JournalSettings
from posd.keys.settings import KeySettings
from posd.logs import LEVELS as LOG_LEVELS
from posd.paths import DEFAULT_CONFIG_PATH as DEFAULT_CONFIG_PATH  # re-exported
from posd.typecheck import choice, coerce, type_name
from sync.settings import SyncSettings

MODES = ("production", "development")


@dataclass(frozen=True)
class TerminalSettings:
    store_id: str
    terminal_id: str
    mode: str = "production"
    state_dir: Path = Path("/var/lib/posd")

    def __post_init__(self) -> None:
        choice("mode", self.mode, MODES)
        for name in ("store_id", "terminal_id"):
            value = getattr(self, name)
            if not value or not value.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"{name}: must be non-empty letters, digits, '-' or '_'")


@dataclass(frozen=True)
class ApiSettings:
    socket: Path = Path("/run/posd/api.sock")
    socket_group: str | None = "posd-clients"


@dataclass(frozen=True)
class AwsSettings:
    # Unset: boto3's chain decides (AWS_REGION, AWS_DEFAULT_REGION, the profile), as every
    # AWS tool does; a region in the file would silently win over the environment.
    region: str | None = None
    # Optional endpoint overrides (VPC interface endpoints). Unset: boto3's own resolution,
    # which honours AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_EVENTBRIDGE and
    # AWS_ENDPOINT_URL_DYNAMODB (botocore derives the name from the service id; sync also
    # accepts ..._EVENTS). DynamoDB: where the cloud's proven watermarks are read
    # ([sync] acknowledged_retention); SSM: the published fair rate ([sync] fair_rate_parameter).
    endpoint_url: str | None = None
    kms_endpoint_url: str | None = None
    events_endpoint_url: str | None = None
    dynamodb_endpoint_url: str | None = None
    ssm_endpoint_url: str | None = None
    profile: str | None = None
    # Where short-lived credentials are served on loopback (posd-credentials.service: the
    # Roles Anywhere signing helper's IMDSv2-compatible endpoint); unset: boto3's chain.
    credentials_endpoint: str | None = None
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class OfflineLimits:
    """Limits that apply while the terminal cannot deliver. 0 means no limit."""

    max_payment_amount: int = 0
    max_pending_amount: int = 0
    max_pending_count: int = 0
    max_pending_age_seconds: float = 0.0

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            if getattr(self, item.name) < 0:
                raise ValueError(f"{item.name}: must be >= 0 (0 = no limit)")


DEFAULT_CURRENCIES = ("EUR",)


@dataclass(frozen=True)
class PaymentSettings:
    """The terminal's acceptance rules beyond what the card itself must pass.

    `currencies`: the ISO 4217 codes this lane takes (required in production; development
    defaults to EUR). The offline pending-amount limit is kept per currency (amounts in two
    currencies do not add up), so every accepted currency is one more limit's worth at risk: a
    store lists its own currency, not every code a register could send.

    `card_data`: "clear", or "p2pe" with an encrypting reader and `p2pe_key_ref`, the BDK's
    alias or ARN in AWS Payment Cryptography (`posd.card_data`).
    """

    refuse_unknown_brand: bool = False
    currencies: tuple[str, ...] = DEFAULT_CURRENCIES
    card_data: str = CLEAR
    p2pe_key_ref: str | None = None

    def __post_init__(self) -> None:
        choice("card_data", self.card_data, CARD_DATA_MODES)
        check_key_ref(self.p2pe_key_ref)
        if not self.currencies:
            raise ValueError("currencies: list at least one ISO 4217 code")
        unknown = [code for code in self.currencies if not is_active(code)]
        if unknown:
            raise ValueError(
                f"currencies: not active ISO 4217 codes: {', '.join(unknown)} (use capitals)"
            )


@dataclass(frozen=True)
class LogSettings:
    """The daemon's log level (`POSD_LOG_LEVEL` in its environment wins); SIGHUP rereads it."""

    level: str = "info"

    def __post_init__(self) -> None:
        choice("level", self.level, LOG_LEVELS)


@dataclass(frozen=True)
class DeviceSettings:
    """One device: the driver name from the driver table plus driver-specific options."""

    driver: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    path: Path
    terminal: TerminalSettings
    api: ApiSettings
    aws: AwsSettings
    keys: KeySettings
    journal: JournalSettings
    sync: SyncSettings
    offline: OfflineLimits
    devices: Mapping[str, DeviceSettings]
    payments: PaymentSettings = PaymentSettings()
    log: LogSettings = LogSettings()
    identity: IdentitySettings = field(default_factory=IdentitySettings)

    @property
    def state_dir(self) -> Path:
        return self.terminal.state_dir

    @property
    def store_id(self) -> str:
        return self.terminal.store_id

    @property
    def terminal_id(self) -> str:
        return self.terminal.terminal_id


T = TypeVar("T")


def _build(cls: type[T], table: Any, path: Path, prefix: str) -> T:
    if not isinstance(table, dict):
        raise ConfigError(str(path), prefix, "expected a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in known:
            raise ConfigError(
                str(path),
                f"{prefix}.{key}",
                f"unknown key (known keys: {', '.join(sorted(known))})",
            )
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        if item.name not in table:
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                raise ConfigError(str(path), f"{prefix}.{item.name}", "required key is missing")
            continue
        try:
            values[item.name] = coerce(hints[item.name], table[item.name])
        except TypeError:
            raise ConfigError(
                str(path),
                f"{prefix}.{item.name}",
                f"expected {type_name(hints[item.name])}, got {table[item.name]!r}",
            ) from None
    try:
        return cls(**values)
    except ValueError as error:
        # Dataclass validation messages start with the field name: "field: what is wrong".
        name, _, reason = str(error).partition(": ")
        name = getattr(error, "field", name.removeprefix(f"{prefix}."))
        key = f"{prefix}.{name}" if reason else prefix
        raise ConfigError(str(path), key, reason or str(error)) from None


def _devices(table: Any, path: Path) -> dict[str, DeviceSettings]:
    if not isinstance(table, dict):
        raise ConfigError(str(path), "devices", "expected a table of devices")
    devices: dict[str, DeviceSettings] = {}
    for name, body in table.items():
        if not isinstance(body, dict):
            raise ConfigError(str(path), f"devices.{name}", "expected a table")
        driver = body.get("driver")
        if not isinstance(driver, str) or not driver:
            raise ConfigError(str(path), f"devices.{name}.driver", "expected a driver name")
        options = {k: v for k, v in body.items() if k != "driver"}
        devices[name] = DeviceSettings(driver, check_device(name, driver, options, str(path)))
    return devices


SECTIONS = (
    "terminal",
    "api",
    "aws",
    "keys",
    "journal",
    "sync",
    "offline",
    "payments",
    "log",
    "identity",
    "devices",
)


def parse_config(document: Mapping[str, Any], path: Path, *, signs: bool = True) -> Config:
    """The checked config of `document` (read from `path`); `signs=False` for a process that
    never signs with `[identity]`'s key, so never reads it (the capture daemon)."""
    for key in document:
        if key not in SECTIONS:
            raise ConfigError(str(path), key, f"unknown section (known: {', '.join(SECTIONS)})")
    if "terminal" not in document:
        raise ConfigError(str(path), "terminal", "required section is missing")
    base = path.parent

    def resolve(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else Path(os.path.normpath(base / p)))

    terminal = _build(TerminalSettings, document["terminal"], path, "terminal")
    terminal = dataclasses.replace(
        terminal, state_dir=resolve(terminal.state_dir) or terminal.state_dir
    )
    api = _build(ApiSettings, document.get("api", {}), path, "api")
    api = dataclasses.replace(api, socket=resolve(api.socket) or api.socket)
    keys = _build(KeySettings, document.get("keys", {}), path, "keys")
    keys = dataclasses.replace(keys, local_key_file=resolve(keys.local_key_file))
    if terminal.mode == "production" and keys.provider == "local":
        raise ConfigError(
            str(path),
            "keys.provider",
            "the 'local' key provider is for development only; "
            "use 'kms' in production (or set terminal.mode = 'development')",
        )
    payments = _build(PaymentSettings, document.get("payments", {}), path, "payments")
    if terminal.mode == "production" and "currencies" not in document.get("payments", {}):
        # No default is right for every store: a lane that guessed would refuse a whole
        # country's payments, or take codes its offline limits were not sized for.
        raise ConfigError(
            str(path),
            "payments.currencies",
            'required in production: the ISO 4217 codes this lane takes, e.g. currencies = ["USD"]',
        )
    config = Config(
        path=path,
        terminal=terminal,
        api=api,
        aws=_build(AwsSettings, document.get("aws", {}), path, "aws"),
        keys=keys,
        journal=_build(JournalSettings, document.get("journal", {}), path, "journal"),
        sync=_build(SyncSettings, document.get("sync", {}), path, "sync"),
        offline=_build(OfflineLimits, document.get("offline", {}), path, "offline"),
        devices=_devices(document.get("devices", {}), path),
        payments=payments,
        log=_build(LogSettings, document.get("log", {}), path, "log"),
        identity=_identity(document.get("identity", {}), path, terminal, resolve, signs),
    )
    reader = config.devices.get(CARD_READER_KEY)
    check_card_data(
        payments.card_data,
        payments.p2pe_key_ref,
        reader.driver if reader is not None else None,
        str(path),
    )
    return config


def _identity(
    table: Any,
    path: Path,
    terminal: TerminalSettings,
    resolve: Callable[[Path | None], Path | None],
    signs: bool,
) -> IdentitySettings:
    """`[identity]`, its files read and checked against the lane (last: the files are the
    slowest check, and a typo elsewhere is named first); the private key only if `signs`."""
    identity = _build(IdentitySettings, table, path, "identity")
    identity = dataclasses.replace(
        identity,
        certificate_file=resolve(identity.certificate_file),
        private_key_file=resolve(identity.private_key_file),
    )
    if terminal.mode == "production" and not identity.configured:
        # Unsigned, the lane's checkpoints and alarms prove nothing to the cloud.
        raise ConfigError(
            str(path),
            "identity.certificate_file",
            "required in production: this lane's IAM Roles Anywhere certificate and key "
            "(the PEM files the signing helper reads), which sign its checkpoints and alarms: "
            '[identity] certificate_file = "/etc/posd/terminal.pem", '
            'private_key_file = "/etc/posd/terminal.key"',
        )
    check_identity(identity, path, terminal.store_id, terminal.terminal_id, signs=signs)
    return identity


def load_config(path: Path, *, signs: bool = True) -> Config:
    """Read and validate the TOML file at `path` (`signs`: see `parse_config`)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as error:
        raise ConfigError(str(path), "", f"cannot read: {error.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), "", f"invalid TOML: {error}") from None
    except RecursionError:
        raise ConfigError(str(path), "", "invalid TOML: nested too deeply") from None
    return parse_config(document, path, signs=signs)
