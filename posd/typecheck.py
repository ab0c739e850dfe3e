"""Checking TOML values against Python annotations: the config's one notion of a type.

Used for the config's own dataclasses and for device driver options (checked against the
driver constructor's annotations), so both speak of types the same way.
"""

from __future__ import annotations

import enum
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a finite number",
    bool: "true or false",
    Path: "a path",
}
_MAPPINGS = (dict, Mapping, typing.Mapping)


class NotSettable(TypeError):
    """The annotation names a type a config file cannot express."""


def type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) in _MAPPINGS:
        _key, value = typing.get_args(annotation) or (str, Any)
        return f"a table whose values are {type_name(value)}"
    if typing.get_origin(annotation) is tuple:
        return f"a list of {type_name(typing.get_args(annotation)[0])}"
    if _is_enum(annotation):
        return "one of " + ", ".join(f'"{member.value}"' for member in annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:
        return " or ".join(type_name(a) for a in args)
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def coerce(annotation: Any, value: Any) -> Any:
    """`value` checked (and widened: int -> float) against `annotation`.

    Raises TypeError if it does not fit, `NotSettable` if no config value could.
    """
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(annotation):
            return None
        settable = False
        for option in typing.get_args(annotation):
            if option is type(None):
                continue
            try:
                return coerce(option, value)
            except NotSettable:
                continue
            except TypeError:
                settable = True
        raise TypeError if settable else NotSettable
    if origin is tuple:
        item_type, _more = typing.get_args(annotation)  # tuple[X, ...]: a TOML list of X
        if not isinstance(value, list):
            raise TypeError
        return tuple(coerce(item_type, item) for item in value)
    if origin in _MAPPINGS:
        key_type, value_type = typing.get_args(annotation) or (str, Any)
        if not isinstance(value, dict):
            raise TypeError
        return {coerce(key_type, k): coerce(value_type, v) for k, v in value.items()}
    if annotation is Any:
        return value
    if _is_enum(annotation):
        try:
            return annotation(value)
        except ValueError:
            raise TypeError from None
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise TypeError
    if annotation is str:
        if isinstance(value, str):
            return value
        raise TypeError
    if annotation is Path:
        if isinstance(value, str) and value:
            return Path(value)
        raise TypeError
    raise NotSettable


def _is_enum(annotation: Any) -> bool:
    """A closed set of values (a driver's `layout: LayoutName`): checked when the config loads."""
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


def choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """A settings dataclass's check that `value` is one of `allowed` ("name: ..." message)."""
    if value not in allowed:
        raise ValueError(f"{name}: must be one of {', '.join(allowed)} (got {value!r})")
