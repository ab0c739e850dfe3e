"""The installed version of posd (from the package metadata)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

UNKNOWN_VERSION = "unknown"


def posd_version() -> str:
    try:
        return version("posd")
    except PackageNotFoundError:
        return UNKNOWN_VERSION
