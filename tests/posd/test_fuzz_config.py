"""Whatever a config file holds, loading it gives a Config or a `ConfigError` naming a key,
never a traceback: arbitrary bytes, and the shipped examples with values swapped for values of
any TOML type, keys dropped and keys added."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posd.config import Config, load_config, parse_config
from posd.errors import ConfigError
from tests.repo import REPO_ROOT
from tests.terminal_identity import shipped_example

REPO = REPO_ROOT
EXAMPLES = {
    name: tomllib.loads((REPO / "config" / name).read_text()) for name in ("dev.toml", "posd.toml")
}

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=5,
)


def paths_of(document: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for key, value in document.items():
        found.append((*prefix, key))
        if isinstance(value, dict):
            found += paths_of(value, (*prefix, key))
    return found


def mutate(
    document: dict[str, Any], path: tuple[str, ...], action: str, value: Any
) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    if action == "drop":
        del parent[path[-1]]
    elif action == "add":
        target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
        target["unexpected_" + str(len(target))] = value
    else:
        parent[path[-1]] = value
    return changed


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    document = EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths_of(document)))
        action = draw(st.sampled_from(["set", "set", "drop", "add"]))
        document = mutate(document, path, action, draw(toml_values))
    return document


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the mutated examples are parsed: posd.toml's [identity] files are there."""
    directory = tmp_path_factory.mktemp("examples")
    shipped_example(directory, "posd.toml")
    return directory


@settings(max_examples=300, deadline=None)
@given(document=mutated_documents())
def test_a_mutated_config_is_accepted_or_refused_by_key(
    example_dir: Path, document: dict[str, Any]
) -> None:
    try:
        loaded: Config | str = parse_config(document, example_dir / "fuzzed.toml")
    except ConfigError as error:
        loaded = str(error)
    assert loaded  # a Config, or a message naming the key


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_a_config_error_never_a_traceback(tmp_path_factory: Any, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "posd.toml"
    path.write_bytes(raw)
    try:
        loaded: Config | str = load_config(path)
    except ConfigError as error:
        loaded = str(error)
    assert loaded
