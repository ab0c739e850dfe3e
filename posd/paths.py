"""Default locations, in a module of their own so the CLI's parser can name them without
loading the config machinery (and what that imports)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_CONFIG_PATH = Path("/etc/posd/posd.toml")
