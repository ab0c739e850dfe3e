"""Every config key takes effect somewhere: a key that is parsed and never read is a lie.

For each field of each config section, some module outside config parsing and the settings
dataclasses must read it through the section: `config.sync.lease_seconds`, `sync.lease_seconds`,
`settings.lease_seconds` or `self._settings.lease_seconds` (the receiver is named after the
section, or is a `settings` object). Keys that are parsed ahead of the code that
uses them are listed in `NOT_YET_WIRED` with the reason; the list must be exactly the keys
nobody reads, so wiring one up (or adding a dead one) makes this test say so.
"""

from __future__ import annotations

import ast
import dataclasses
import typing

from posd.config import Config
from tests.repo import REPO_ROOT

REPO = REPO_ROOT
CODE_PACKAGES = ("posd", "drivers", "sync")
# Where keys are declared and validated: reading a field there is not using it.
DECLARING_MODULES = {
    "posd/config.py",
    "posd/journal/settings.py",
    "posd/keys/settings.py",
    "sync/settings.py",
}
# Keys whose whole effect is a check made while the config loads.
ENFORCED_AT_LOAD = {"terminal.mode"}  # production refuses the `local` key provider
# Parsed ahead of the code that uses them (none today).
NOT_YET_WIRED: set[str] = set()


TERMINAL_SHORTCUTS = {name for name, member in vars(Config).items() if isinstance(member, property)}


def config_keys() -> set[str]:
    hints = typing.get_type_hints(Config)
    keys: set[str] = set()
    for section in dataclasses.fields(Config):
        section_type = hints[section.name]
        if dataclasses.is_dataclass(section_type):
            keys.update(f"{section.name}.{item.name}" for item in dataclasses.fields(section_type))
    return keys


def receiver_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id.lstrip("_")
    if isinstance(node, ast.Attribute):
        return node.attr.lstrip("_")
    return None


def keys_read(sections: set[str]) -> set[str]:
    """`section.field` for every read of a field through a receiver that names its section."""
    read: set[str] = set()
    for package in CODE_PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if str(path.relative_to(REPO)) in DECLARING_MODULES:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)):
                    continue
                receiver = receiver_name(node.value)
                if receiver == "config" and node.attr in TERMINAL_SHORTCUTS:
                    read.add(f"terminal.{node.attr}")  # Config.state_dir -> terminal.state_dir
                elif receiver in sections:
                    read.add(f"{receiver}.{node.attr}")
                elif receiver is not None and receiver.endswith("settings"):
                    read.update(f"{section}.{node.attr}" for section in sections)
    return read


def test_every_config_key_is_read_outside_config_parsing() -> None:
    keys = config_keys()
    assert {"journal.min_free_bytes", "sync.max_in_flight", "aws.profile"} <= keys
    read = keys_read({key.split(".")[0] for key in keys})
    unread = keys - read - ENFORCED_AT_LOAD
    assert unread == NOT_YET_WIRED
