"""Values for people: yes/no, sizes in KiB/MiB, ages, amounts with their currency's decimals,
and mappings or lists as plain text (never a Python repr such as `{'a': 1}` or `None`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from posd.currency import format_amount

NONE = "-"
SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
SIZE_STEP = 1024
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400


def yes_no(value: bool | None) -> str:
    return NONE if value is None else ("yes" if value else "no")


def size(count: int | None) -> str:
    """`3145728` -> `3.0 MiB`."""
    if count is None:
        return NONE
    value = float(count)
    for unit in SIZE_UNITS:
        if abs(value) < SIZE_STEP or unit == SIZE_UNITS[-1]:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= SIZE_STEP
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    """`4000` -> `1h 06m`; `42.3` -> `42.3s`."""
    if seconds is None:
        return NONE
    if seconds < SECONDS_PER_MINUTE:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < SECONDS_PER_HOUR:
        return f"{whole // SECONDS_PER_MINUTE}m {whole % SECONDS_PER_MINUTE:02d}s"
    if whole < SECONDS_PER_DAY:
        return f"{whole // SECONDS_PER_HOUR}h {whole % SECONDS_PER_HOUR // 60:02d}m"
    return f"{whole // SECONDS_PER_DAY}d {whole % SECONDS_PER_DAY // SECONDS_PER_HOUR:02d}h"


def amounts(by_currency: Mapping[str, int]) -> str:
    """`{"EUR": 743224}` -> `EUR 7,432.24`."""
    return ", ".join(format_amount(a, c) for c, a in sorted(by_currency.items())) or NONE


def human(value: Any) -> str:
    """Any result value as text a person reads."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {human(v)}" for k, v in value.items()) or NONE
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value) or NONE
    return str(value)
