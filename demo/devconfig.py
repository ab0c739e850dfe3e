"""One builder for the daemon configs that development writes: the demo's, the tests', the
benchmarks'.

Each caller names only what it changes (sections as plain mappings, with development defaults
for the rest); `DevConfig.write` renders TOML and loads the file with the daemon's own loader
(`posd.config.load_config`) before anyone uses it, so a key the parser refuses fails where it
was written, not in a daemon's log minutes later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from posd.config import load_config

Table = Mapping[str, Any]

DEVELOPMENT = "development"
DEFAULT_STATE_DIR = "state"  # relative to the config file's directory
LOCAL_KEY_FILE = "kek.b64"
DEV_CURRENCIES = ("EUR",)  # production requires [payments] currencies: development names one
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# What a TOML basic string may not hold as is: the quote, the backslash, control characters.
MUST_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')


def local_keys(key_file: str | Path = LOCAL_KEY_FILE) -> dict[str, Any]:
    """The development key provider: a key file (relative to the config file)."""
    return {"provider": "local", "local_key_file": key_file}


def identity_files(certificate_file: str | Path, private_key_file: str | Path) -> dict[str, Any]:
    """`[identity]`: the lane's certificate and key (`demo.pki.TerminalCredentials.write`)."""
    return {"certificate_file": certificate_file, "private_key_file": private_key_file}


def simulated_card_reader() -> dict[str, Any]:
    return {"driver": "simulated"}


def serial_card_reader(port: str) -> dict[str, Any]:
    """The real serial driver on a simulator's pty, with reconnect pauses on a test's scale."""
    return {"driver": "serial", "port": port, "backoff_initial_s": 0.05, "backoff_max_s": 0.2}


def simulated_palm(
    identities: Mapping[str, str], present: str | None = None, **options: Any
) -> dict[str, Any]:
    """The simulated palm scanner: enrolled palms (label -> credential token) and the one
    presented at every identify (`None`: nobody, every scan times out)."""
    palm: dict[str, Any] = {"driver": "simulated", "identities": dict(identities)}
    if present is not None:
        palm["present"] = present
    return {**palm, **options}


@dataclass(frozen=True)
class DevConfig:
    """A daemon config: `[terminal]` from the fields, every other section as given.

    Empty sections are left out (the daemon's defaults apply). Devices default to the
    simulated card reader alone.
    """

    store_id: str
    terminal_id: str
    mode: str = DEVELOPMENT
    state_dir: str | Path = DEFAULT_STATE_DIR
    api: Table = field(default_factory=dict)
    aws: Table = field(default_factory=dict)
    keys: Table = field(default_factory=local_keys)
    journal: Table = field(default_factory=dict)
    sync: Table = field(default_factory=dict)
    offline: Table = field(default_factory=dict)
    payments: Table = field(default_factory=lambda: {"currencies": list(DEV_CURRENCIES)})
    # certificate_file and private_key_file (`identity_files`): required in production
    identity: Table = field(default_factory=dict)
    devices: Mapping[str, Table] = field(
        default_factory=lambda: {"card_reader": simulated_card_reader()}
    )

    def document(self) -> dict[str, dict[str, Any]]:
        """The config as the TOML parser will read it back."""
        terminal = {
            "store_id": self.store_id,
            "terminal_id": self.terminal_id,
            "mode": self.mode,
            "state_dir": self.state_dir,
        }
        sections: dict[str, Table] = {
            "terminal": terminal,
            "api": self.api,
            "aws": self.aws,
            "keys": self.keys,
            "journal": self.journal,
            "sync": self.sync,
            "offline": self.offline,
            "payments": self.payments,
            "identity": self.identity,
            "devices": self.devices,
        }
        return {name: plain(body) for name, body in sections.items() if body}

    def amended(self, **sections: Table) -> DevConfig:
        """This config with keys added to or changed in the named sections, the sections'
        other keys kept: `amended(sync={"api": "v2"})`."""
        changes: dict[str, Any] = {
            name: {**getattr(self, name), **keys} for name, keys in sections.items()
        }
        return replace(self, **changes)

    def render(self) -> str:
        return render_toml(self.document())

    def write(self, path: Path) -> Path:
        """Write the config to `path` and load it back with the daemon's loader (which raises
        `ConfigError` on anything it refuses); returns `path`."""
        path.write_text(self.render(), encoding="utf-8")
        load_config(path)
        return path


def plain(table: Table) -> dict[str, Any]:
    """`table` with paths as strings and nested mappings as dicts: what TOML reads back."""

    def value(item: Any) -> Any:
        if isinstance(item, Mapping):
            return plain(item)
        if isinstance(item, Path):
            return str(item)
        if isinstance(item, Sequence) and not isinstance(item, str):
            return [value(element) for element in item]
        return item

    return {key: value(item) for key, item in table.items()}


def render_toml(document: Table) -> str:
    """TOML for a document of tables. A table whose values are all tables is written as
    sub-table headers (`[devices.card_reader]`); any other nested table is written inline
    (`identities = { alice = "..." }`)."""
    lines: list[str] = []
    _render_table(document, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _render_table(table: Table, path: list[str], lines: list[str]) -> None:
    if table and all(isinstance(item, Mapping) for item in table.values()):
        for key, item in table.items():
            _render_table(item, [*path, key], lines)
        return
    lines.append("")
    lines.append("[" + ".".join(_key(part) for part in path) + "]")
    lines.extend(f"{_key(key)} = {_value(item)}" for key, item in table.items())


def _key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    return '"' + MUST_ESCAPE.sub(lambda match: f"\\u{ord(match.group()):04x}", text) + '"'


def _value(item: Any) -> str:
    if isinstance(item, bool):  # before int: a bool is an int
        return "true" if item else "false"
    if isinstance(item, int | float):
        return repr(item)
    if isinstance(item, str | Path):
        return _string(str(item))
    if isinstance(item, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in item.items()) + " }"
    if isinstance(item, Sequence):
        return "[" + ", ".join(_value(element) for element in item) + "]"
    raise TypeError(f"no TOML form for {item!r}")
