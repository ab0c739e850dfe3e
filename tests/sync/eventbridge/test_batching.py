"""Property tests of request planning: limits never exceeded, nothing lost or duplicated."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.eventbridge.batching import plan_batches

sizes = st.lists(st.integers(min_value=1, max_value=5_000), max_size=200)
max_entries = st.integers(min_value=1, max_value=10)
max_bytes = st.integers(min_value=1, max_value=20_000)


def _plan(items: list[int], entries: int, limit: int):
    # Items are (position, size) so equal sizes stay distinguishable.
    return plan_batches(list(enumerate(items)), lambda item: item[1], entries, limit)


@given(sizes, max_entries, max_bytes)
def test_no_batch_exceeds_count_or_bytes(items: list[int], entries: int, limit: int) -> None:
    plan = _plan(items, entries, limit)
    for batch in plan.batches:
        assert 1 <= len(batch) <= entries
        assert sum(size for _, size in batch) <= limit


@given(sizes, max_entries, max_bytes)
def test_every_item_once_in_order(items: list[int], entries: int, limit: int) -> None:
    plan = _plan(items, entries, limit)
    flat = [item for batch in plan.batches for item in batch]
    assert flat == [item for item in enumerate(items) if item[1] <= limit]
    assert plan.oversize == [item for item in enumerate(items) if item[1] > limit]


@given(sizes, max_entries, max_bytes)
def test_greedy_batches_are_full(items: list[int], entries: int, limit: int) -> None:
    """A batch is closed only when the next item would not fit: no wasted requests."""
    plan = _plan(items, entries, limit)
    for batch, following in zip(plan.batches, plan.batches[1:], strict=False):
        next_size = following[0][1]
        assert len(batch) == entries or sum(s for _, s in batch) + next_size > limit


@pytest.mark.parametrize(("entries", "limit"), [(0, 10), (10, 0), (-1, 10)])
def test_rejects_non_positive_limits(entries: int, limit: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_batches([1], lambda x: x, entries, limit)
