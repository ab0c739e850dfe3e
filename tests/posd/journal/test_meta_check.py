"""The append's metadata check (`validate_meta`, one pass, its encoder made once) accepts and
refuses what the check it replaced did, and stores the same bytes: `canonical_ascii_json`
of the checked dict. The replaced check is kept here as the oracle."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posd.errors import UsageError
from posd.journal.rows import (
    MAX_AMOUNT_MINOR,
    MAX_META_BYTES,
    MAX_META_INTEGER,
    validate_meta,
)
from wire.envelope import canonical_ascii_json

_META_TYPES = frozenset({str, int, bool, type(None)})


def oracle(meta: dict[Any, Any]) -> tuple[dict[Any, Any], str] | None:
    """The check as it was before it was made lean: None where it refused."""
    clean = dict(meta)
    amount = clean.get("amount")
    if amount is not None and (type(amount) is not int or not 0 <= amount <= MAX_AMOUNT_MINOR):
        return None
    for key, value in clean.items():
        if type(key) is not str or not key:
            return None
        if type(value) not in _META_TYPES:
            return None
        if type(value) is int and abs(value) > MAX_META_INTEGER:
            return None
    text = canonical_ascii_json(clean)
    if len(text) > MAX_META_BYTES:
        return None
    return clean, text.decode()


EDGES = (
    0,
    -1,
    MAX_META_INTEGER,
    MAX_META_INTEGER + 1,
    -MAX_META_INTEGER,
    -MAX_META_INTEGER - 1,
    MAX_AMOUNT_MINOR,
    MAX_AMOUNT_MINOR + 1,
)
_EDGES = st.sampled_from(EDGES)
_VALUES = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8")),
    st.integers(),
    _EDGES,
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.binary(max_size=4),
    st.text(min_size=MAX_META_BYTES // 2, max_size=MAX_META_BYTES // 2 + 10),
)
_KEYS = st.one_of(
    st.text(max_size=12), st.sampled_from(["amount", "currency", ""]), st.integers(), st.none()
)


@given(st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_accepts_and_refuses_what_the_old_check_did_with_the_same_bytes(
    meta: dict[Any, Any],
) -> None:
    expected = oracle(meta)
    if expected is None:
        with pytest.raises(UsageError):
            validate_meta(meta)
        return
    clean, text = validate_meta(meta)
    assert (clean, text) == expected
    assert [type(v) for v in clean.values()] == [type(v) for v in expected[0].values()]
    assert text.encode() == canonical_ascii_json(meta)


@pytest.mark.parametrize("key", ["amount", "n"])
@pytest.mark.parametrize("edge", EDGES)
def test_integer_bounds_agree(edge: int, key: str) -> None:
    _agree({key: edge})


@given(st.integers(min_value=-(2**60), max_value=2**60), st.sampled_from(["amount", "n"]))
def test_integers_agree(value: int, key: str) -> None:
    _agree({key: value})


def _agree(meta: dict[str, Any]) -> None:
    if oracle(meta) is None:
        with pytest.raises(UsageError):
            validate_meta(meta)
    else:
        assert validate_meta(meta) == oracle(meta)
