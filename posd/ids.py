"""Time-ordered identifiers: UUIDv7 (RFC 9562), the event idempotency key end to end."""

from __future__ import annotations

import os
import threading
import time
import uuid

_VERSION = 7
_VARIANT = 0b10
_lock = threading.Lock()
_last_ms = 0
_last_counter = 0
_COUNTER_BITS = 12
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    return uuid.UUID(int=_uuid7_int(now_ms))


def uuid7_str(now_ms: int | None = None) -> str:
    """`str(uuid7())` without building the UUID object (it sits on the append path)."""
    h = f"{_uuid7_int(now_ms):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def observe(event_id: str) -> None:
    """Never make an id at or below `event_id` (one this terminal made before, perhaps in
    an earlier process): if the wall clock has gone back since, ids go on from there."""
    global _last_ms, _last_counter
    value = uuid.UUID(event_id).int
    ms, counter = value >> 80, (value >> 64) & _COUNTER_MAX
    with _lock:
        if (ms, counter) > (_last_ms, _last_counter):
            _last_ms, _last_counter = ms, counter


def _uuid7_int(now_ms: int | None) -> int:
    """A UUIDv7: 48-bit Unix milliseconds, a 12-bit counter (monotonic within a process), random.

    The counter (RFC 9562 method 1) keeps ids strictly increasing when many are made in the
    same millisecond, or while the wall clock is behind the last id (it went back), so
    sorting by event_id matches capture order on one terminal.
    """
    global _last_ms, _last_counter
    with _lock:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        if ms <= _last_ms:
            ms = _last_ms
            _last_counter += 1
            if _last_counter > _COUNTER_MAX:
                ms += 1
                _last_counter = 0
        else:
            _last_counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count
        _last_ms = ms
        counter = _last_counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= _VERSION << 76
    value |= counter << 64
    value |= _VARIANT << 62
    value |= rand_b
    return value
