"""Size- and count-aware splitting of an ordered run of entries into PutEvents requests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class BatchPlan(Generic[T]):
    """`batches` keep the input order; `oversize` items fit in no request at all."""

    batches: list[list[T]] = field(default_factory=list)
    oversize: list[T] = field(default_factory=list)


def plan_batches(
    items: Sequence[T], size_of: Callable[[T], int], max_entries: int, max_bytes: int
) -> BatchPlan[T]:
    """Greedy, order-preserving batches of at most `max_entries` items and `max_bytes` bytes.

    Every item lands in exactly one batch or in `oversize`; concatenating the batches gives
    the input order minus the oversize items.
    """
    if max_entries < 1 or max_bytes < 1:
        raise ValueError("max_entries and max_bytes must be positive")
    plan: BatchPlan[T] = BatchPlan()
    current: list[T] = []
    current_bytes = 0
    for item in items:
        size = size_of(item)
        if size > max_bytes:
            plan.oversize.append(item)
            continue
        if current and (len(current) >= max_entries or current_bytes + size > max_bytes):
            plan.batches.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += size
    if current:
        plan.batches.append(current)
    return plan
