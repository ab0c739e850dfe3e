"""Reading the TOML tables shipped inside the `drivers.card` package (`data/`)."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from drivers.errors import CardTableError

DATA_PACKAGE = "drivers.card"
DATA_DIR = "data"


def load_table(filename: str) -> dict[str, Any]:
    """The parsed TOML file `data/<filename>`; a missing or broken file is a `CardTableError`."""
    try:
        text = resources.files(DATA_PACKAGE).joinpath(DATA_DIR, filename).read_text("utf-8")
        return tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CardTableError(f"{filename}: {error}") from None


def require(row: dict[str, Any], key: str, kind: type, where: str) -> Any:
    """`row[key]`, checked to be of `kind` (bool is not accepted where int is asked)."""
    value = row.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CardTableError(f"{where}: '{key}' must be a {kind.__name__}")
    return value
