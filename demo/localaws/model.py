"""Checking a request against botocore's model of a service, as the service itself does.

The local stand-ins (`eventbridge_v2`, `payment_crypto`) refuse what the real service would
refuse for its shape: required members, unknown members, unions with other than one member
set, lengths, patterns, enums, list sizes and types. The model is the contract, for the client
and for the stand-in alike. Values of members the model marks sensitive are never quoted.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any


def service_model(name: str) -> Any:
    """botocore's model of service `name` (as the boto3 client loads it)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def validate(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    """Append to `problems` every way `value` departs from botocore `shape`."""
    kind = shape.type_name
    if kind == "structure":
        _check_structure(shape, value, path, problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list")
            return
        _check_length(shape, len(value), path, problems)
        for index, item in enumerate(value):
            validate(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string")
            return
        _check_length(shape, len(value), path, problems)
        _check_string(shape, value, path, problems)
    elif kind == "timestamp":
        if not isinstance(value, datetime | int | float) or isinstance(value, bool):
            problems.append(f"{path}: expected a timestamp")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected an integer")
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(f"{path}: expected a boolean")


def _check_structure(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a structure")
        return
    for name in shape.required_members:
        if name not in value:
            problems.append(f"{path}.{name}: required member is missing")
    if shape.is_tagged_union and len(value) != 1:
        problems.append(f"{path}: exactly one of {', '.join(shape.members)} must be set")
    for name, member in value.items():
        if name not in shape.members:
            problems.append(f"{path}.{name}: unknown member")
        else:
            validate(shape.members[name], member, f"{path}.{name}", problems)


def _check_length(shape: Any, length: int, path: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and length < low:
        problems.append(f"{path}: length {length} is below the minimum {low}")
    if high is not None and length > high:
        problems.append(f"{path}: length {length} is above the maximum {high}")


def _check_string(shape: Any, value: str, path: str, problems: list[str]) -> None:
    sensitive = shape.metadata.get("sensitive", False)
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        problems.append(f"{path}: must be one of {', '.join(enum)}")
    pattern = shape.metadata.get("pattern")
    if pattern and re.fullmatch(pattern, value) is None:
        shown = "value" if sensitive else repr(value)
        problems.append(f"{path}: {shown} does not match the pattern {pattern}")
