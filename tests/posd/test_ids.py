"""UUIDv7 event ids (`posd.ids`): every id is a valid UUIDv7 in canonical text, strictly
above the one before whatever the clock does, and the randomness comes from a pool drawn a
batch at a time (one `getrandom` per `POOL_IDS` ids, not two per id)."""

from __future__ import annotations

import os
import threading
import uuid

from hypothesis import given
from hypothesis import strategies as st

from posd.ids import POOL_IDS, Uuid7Source

_MS_MAX = (1 << 48) - 1
_COUNTER_MAX = (1 << 12) - 1


def parsed(text: str) -> uuid.UUID:
    value = uuid.UUID(text)
    assert str(value) == text  # canonical: lowercase, dashes in place
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    return value


class CountedDraws(list[int]):
    """The randomness a source draws, `os.urandom` underneath, each draw's size kept."""

    def __call__(self, size: int) -> bytes:
        self.append(size)
        return os.urandom(size)


@given(st.lists(st.integers(min_value=1, max_value=_MS_MAX - 2), min_size=1, max_size=300))
def test_ids_are_uuid7_strictly_increasing_whatever_the_clock_does(clock: list[int]) -> None:
    source = Uuid7Source()
    ids = [source.text(now_ms) for now_ms in clock]
    values = [parsed(text).int for text in ids]
    assert values == sorted(set(values))  # strictly increasing, so unique
    assert ids == sorted(ids)  # the text sorts as the value does
    for now_ms, value in zip(clock, values, strict=True):
        assert value >> 80 >= now_ms  # never behind the clock given


@given(st.integers(min_value=1, max_value=_MS_MAX - 10), st.integers(0, 3 * POOL_IDS))
def test_many_ids_in_one_millisecond_count_up_then_borrow_the_next(now_ms: int, extra: int) -> None:
    source = Uuid7Source()
    values = [parsed(source.text(now_ms)).int for _ in range(_COUNTER_MAX + extra)]
    assert values == sorted(set(values))
    assert {value >> 80 for value in values} <= {now_ms, now_ms + 1}


@given(st.integers(min_value=1, max_value=_MS_MAX - 10), st.integers(0, _COUNTER_MAX))
def test_observed_ids_are_never_made_again(now_ms: int, counter: int) -> None:
    earlier = uuid.UUID(int=(now_ms << 80) | (7 << 76) | (counter << 64) | (0b10 << 62))
    source = Uuid7Source()
    source.observe(str(earlier))
    assert parsed(source.text(now_ms - 1)).int > earlier.int


def test_randomness_is_drawn_a_pool_at_a_time() -> None:
    draws = CountedDraws()
    source = Uuid7Source(draws)
    texts = [source.text(1_700_000_000_000 + n) for n in range(3 * POOL_IDS)]
    assert len(draws) == 3
    tails = {text[19:] for text in texts}
    assert len(tails) == len(texts)  # each id its own random part


def test_threads_never_share_an_id() -> None:
    source = Uuid7Source()
    made: list[list[str]] = [[] for _ in range(4)]

    def make(into: list[str]) -> None:
        into.extend(source.text() for _ in range(2 * POOL_IDS))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [text for into in made for text in into]
    assert len(set(every)) == len(every)
    for into in made:
        assert into == sorted(into)


def test_a_forked_child_draws_its_own_pool() -> None:
    draws = CountedDraws()
    source = Uuid7Source(draws)
    source.text()
    source.forget_pool()  # what a fork's child does (`os.register_at_fork`)
    source.text()
    assert len(draws) == 2
