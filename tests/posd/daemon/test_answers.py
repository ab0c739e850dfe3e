"""The answer types (`posd.api_answers`) and docs/openapi.yaml describe the same JSON: every
object an answer holds has a type with the schema's keys, and required where it is required.

Walked from every response the document lists: an object schema with properties and no type
for it fails, and so does a type that no answer of the document reaches."""

from __future__ import annotations

import inspect
import types
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

import yaml

import posd.api_answers as answers
from tests.repo import REPO_ROOT

REPO = REPO_ROOT
DOC = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
SCHEMAS = DOC["components"]["schemas"]
REF_PREFIX = "#/components/schemas/"
# The named schemas of answers and their types; nested unnamed objects are found by walking.
NAMED = {
    "Payment": answers.PaymentAnswer,
    "PaymentInProgress": answers.PaymentInProgressAnswer,
    "PaymentRefused": answers.PaymentRefusedAnswer,
    "CancelResult": answers.CancelAnswer,
    "Void": answers.VoidAnswer,
    "Error": answers.ErrorAnswer,
    "Status": answers.StatusAnswer,
    "Limit": answers.LimitAnswer,
    "Devices": answers.DevicesAnswer,
    "Device": answers.DeviceAnswer,
    "FlushResult": answers.FlushAnswer,
}


def response_schemas() -> list[dict[str, Any]]:
    """The JSON schema of every response of every operation."""
    found = []
    for item in DOC["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for response in operation["responses"].values():
                if "$ref" in response:
                    response = DOC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                json_body = response.get("content", {}).get("application/json")
                if json_body is not None:
                    schema = json_body["schema"]
                    found.extend(schema.get("oneOf", [schema]))
    return found


def object_types(hint: Any) -> list[Any]:
    """The TypedDicts a field's type holds (through `X | None` and `list[X]`)."""
    if is_typeddict(hint):
        return [hint]
    if get_origin(hint) in (Union, types.UnionType, list):
        return [t for arg in get_args(hint) for t in object_types(arg)]
    return []


class Walk:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.seen: set[Any] = set()

    def schema(self, schema: dict[str, Any], where: str) -> None:
        """A schema that must have no type of its own (a $ref or an array of them)."""
        if "$ref" in schema:
            name = schema["$ref"].removeprefix(REF_PREFIX)
            if name not in NAMED:
                if "properties" in SCHEMAS[name]:
                    self.problems.append(f"{where}: schema {name} has no answer type")
                return
            self.typed(NAMED[name], SCHEMAS[name], f"{where} ({name})")
        elif "items" in schema:
            self.schema(schema["items"], f"{where}[]")
        elif "properties" in schema:
            self.problems.append(f"{where}: an object with no answer type")

    def typed(self, typed: Any, schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            name = schema["$ref"].removeprefix(REF_PREFIX)
            if NAMED.get(name) is not typed:
                self.problems.append(f"{where}: {typed.__name__} for schema {name}")
                return
            schema = SCHEMAS[name]
        elif "items" in schema:
            self.typed(typed, schema["items"], f"{where}[]")
            return
        if typed in self.seen:
            return
        self.seen.add(typed)
        properties = schema.get("properties", {})
        hints = get_type_hints(typed)
        if set(hints) != set(properties):
            self.problems.append(
                f"{where}: {typed.__name__} keys {sorted(hints)} != {sorted(properties)}"
            )
        if set(typed.__required_keys__) != set(schema.get("required", [])):
            self.problems.append(
                f"{where}: {typed.__name__} requires {sorted(typed.__required_keys__)}, "
                f"the document {sorted(schema.get('required', []))}"
            )
        for key, field in properties.items():
            nested = object_types(hints.get(key))
            if len(nested) == 1:
                self.typed(nested[0], field, f"{where}.{key}")
            else:
                self.schema(field, f"{where}.{key}")


def test_every_answer_type_matches_the_document() -> None:
    walk = Walk()
    for schema in response_schemas():
        walk.schema(schema, "response")
    assert walk.problems == []
    defined = {
        value
        for _, value in inspect.getmembers(answers)
        if is_typeddict(value) and value.__module__ == answers.__name__
    }
    unreached = sorted(t.__name__ for t in defined - walk.seen)
    assert unreached == [], "answer types no response of the document holds"
