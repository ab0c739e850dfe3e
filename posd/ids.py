"""Time-ordered identifiers: UUIDv7 (RFC 9562), the event idempotency key end to end.

An id is made on every payment's append: its random bits come from a pool drawn from the OS
a batch at a time (`POOL_IDS` ids per `getrandom`, each id's part already in text) and its
text is one %-format, not two `getrandom` calls and a hex dump sliced into groups.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import uuid
from collections.abc import Callable
from operator import itemgetter, methodcaller

_COUNTER_BITS = 12
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_COUNTER_SEED_MASK = 0x3FF  # a new millisecond's counter starts below 1024: room to count
_VERSION_BITS = 0x7000  # the version nibble (7) above the 12-bit counter
_HIGH_MS_SHIFT = 16  # the first 32 of the 48 bits of milliseconds: "xxxxxxxx-" (65.5 s each)
_HIGH_MS_MASK = 0xFFFFFFFF
_LOW_MS_MASK = 0xFFFF
_MIDDLE_BYTES = 4  # the low 16 bits of milliseconds, then version and counter: "xxxx-7ccc"
_GROUP_BYTES = 2
POOL_IDS = 256
# rand_b, "vxxx-xxxxxxxxxxxx": 8 bytes whose first two bits are the RFC 4122 variant (10).
_TAIL_BYTES = 8
_TAIL_GROUP_BYTES = 6
_VARIANT = bytes((byte & 0x3F) | 0x80 for byte in range(256))  # a translate table
_SEED_FORMAT = "=H"
_SEED_BYTES = struct.calcsize(_SEED_FORMAT)
_tail_text = methodcaller("hex", "-", _TAIL_GROUP_BYTES)

RandomBytes = Callable[[int], bytes]


class Uuid7Source:
    """Makes UUIDv7 ids strictly increasing within the process (RFC 9562 method 1: a 12-bit
    counter in rand_a). The counter keeps ids in order when many are made in the same
    millisecond, or while the wall clock is behind the last id (it went back), so sorting by
    event_id matches capture order on one terminal."""

    def __init__(self, random_bytes: RandomBytes = os.urandom) -> None:
        self._random = random_bytes
        self._lock = threading.Lock()
        self._last_ms = 0
        self._last_counter = 0
        # (counter seed, random part's text) per id, drawn `POOL_IDS` at a time; popped.
        self._pool: list[tuple[int, str]] = []
        self._high: tuple[int, str] = (-1, "")  # (ms >> 16, its text and dash)
        self.pool_bytes = POOL_IDS * (_TAIL_BYTES + _SEED_BYTES)

    def text(self, now_ms: int | None = None) -> str:
        """A new id's canonical text (`str(uuid.UUID(...))`); `now_ms`: the wall clock in
        Unix milliseconds, read here if not given."""
        with self._lock:
            ms = int(time.time() * 1000) if now_ms is None else now_ms
            seed, tail = self._pool.pop() if self._pool else self._refill()
            if ms <= self._last_ms:
                ms = self._last_ms
                counter = self._last_counter + 1
                if counter > _COUNTER_MAX:
                    ms += 1
                    counter = 0
            else:
                counter = seed & _COUNTER_SEED_MASK
            self._last_ms = ms
            self._last_counter = counter
            high = self._high
            if high[0] != ms >> _HIGH_MS_SHIFT:
                high = self._high = (ms >> _HIGH_MS_SHIFT, self._high_text(ms))
        middle = ((ms & _LOW_MS_MASK) << 16 | _VERSION_BITS | counter).to_bytes(_MIDDLE_BYTES)
        return f"{high[1]}{middle.hex('-', _GROUP_BYTES)}-{tail}"

    def observe(self, event_id: str) -> None:
        """Never make an id at or below `event_id` (one this terminal made before, perhaps in
        an earlier process): if the wall clock has gone back since, ids go on from there."""
        value = uuid.UUID(event_id).int
        ms, counter = value >> 80, (value >> 64) & _COUNTER_MAX
        with self._lock:
            if (ms, counter) > (self._last_ms, self._last_counter):
                self._last_ms, self._last_counter = ms, counter

    def forget_pool(self) -> None:
        """Drop the random parts drawn so far: a forked child must not make its parent's."""
        self._pool = []

    @staticmethod
    def _high_text(ms: int) -> str:
        return f"{ms >> _HIGH_MS_SHIFT & _HIGH_MS_MASK:08x}-"

    def _refill(self) -> tuple[int, str]:
        """Draw the next `POOL_IDS` ids' random bits at once (their texts made by C loops);
        returns the first."""
        raw = bytearray(self._random(self.pool_bytes))
        tails = raw[: POOL_IDS * _TAIL_BYTES]
        tails[::_TAIL_BYTES] = tails[::_TAIL_BYTES].translate(_VARIANT)
        texts = map(_tail_text, map(_first, struct.iter_unpack(f"{_TAIL_BYTES}s", tails)))
        seeds = map(_first, struct.iter_unpack(_SEED_FORMAT, raw[POOL_IDS * _TAIL_BYTES :]))
        self._pool = list(zip(seeds, texts, strict=True))
        return self._pool.pop()


_first = itemgetter(0)


_source = Uuid7Source()
os.register_at_fork(after_in_child=_source.forget_pool)

uuid7_str = _source.text
"""`str(uuid7())`, made as text (it sits on the append path)."""
observe = _source.observe


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    return uuid.UUID(uuid7_str(now_ms))
