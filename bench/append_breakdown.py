"""Where a payment's append spends its time: a wall-clock breakdown of `Recorder.record`.

A batch of appends runs under `cProfile` (its timer is the wall clock) and each part of the
append is read from the profile: a Python function's inclusive time, or the time SQLite's
`execute` spent when called from one place (the BEGIN and the INSERT are two callers of one
C function), or a C method's own time (the COMMIT with its fsync: `Connection.commit`).
Figures are microseconds per append, of the profiled batch: the profiler adds a little to
each Python call, so `profiled_total` is above the unprofiled mean and the Python parts are a
little high; `other_python` is what no part names (the layers, the record's dataclass, the
transaction's bookkeeping).
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable
from typing import Any

US_PER_S = 1_000_000
EXECUTE = ("~", 0, "<method 'execute' of 'sqlite3.Connection' objects>")
COMMIT = ("~", 0, "<method 'commit' of 'sqlite3.Connection' objects>")
TOTAL = ("posd/recorder.py", "record")

# (file, function): functions whose inclusive time is a part.
FUNCTION_PARTS: dict[str, tuple[tuple[str, str], ...]] = {
    "data_key": (("posd/keys/provider.py", "key_for_record"),),
    "meta_check_json": (("posd/journal/rows.py", "validate_meta"),),
    "ids_timestamps": (("posd/ids.py", "text"), ("sync/timestamps.py", "rfc3339")),
    "aad_canonical_json": (
        ("wire/envelope.py", "aad"),
        ("wire/envelope.py", "sealed_aad"),
        ("wire/envelope.py", "fill"),
    ),
    "seal_aes_gcm": (("wire/envelope.py", "seal"),),
    "chain_hash": (("wire/envelope.py", "chain_next"),),
    "capacity_check": (
        ("posd/journal/appending.py", "_disk_problem"),
        ("posd/journal/appending.py", "_check_size"),
    ),
    "checkpoint_check": (("posd/journal/appending.py", "_cover"),),
    "identity_write": (("posd/journal/identity.py", "advance"),),
    "backlog_bound": (
        ("posd/journal/backlog.py", "appended"),
        ("posd/journal/rows.py", "pending_amount"),
    ),
    "priority_hold": (
        ("posd/journal/priority.py", "begin"),
        ("posd/journal/priority.py", "end"),
    ),
    "lock_wait_figures": (("posd/journal/waits.py", "observe"),),
}
# (file, function) calling `execute`: the statements it runs are a part.
SQL_PARTS: dict[str, tuple[tuple[str, str], ...]] = {
    "sql_begin": (
        ("posd/journal/database.py", "begin_prompt"),
        ("posd/journal/database.py", "_begin_promptly"),
    ),
    "sql_insert": (("posd/journal/appending.py", "_commit"),),
}


def breakdown(append: Callable[[], object], count: int) -> dict[str, Any]:
    """Profile `count` calls of `append` (one `Recorder.record` each); the parts, per append."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(count):
        append()
    profile.disable()
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    parts = {name: _inclusive(stats, where) for name, where in FUNCTION_PARTS.items()}
    callers = stats.get(EXECUTE, (0, 0, 0.0, 0.0, {}))[4]
    parts |= {name: _called_from(callers, where) for name, where in SQL_PARTS.items()}
    parts["sql_commit_fsync"] = float(stats.get(COMMIT, (0, 0, 0.0, 0.0))[3])
    total = _inclusive(stats, (TOTAL,))
    # A nested part (the capacity check's size query) is counted once, in its enclosing part.
    parts["other_python"] = total - sum(parts.values())
    per_append = {name: round(seconds / count * US_PER_S, 1) for name, seconds in parts.items()}
    return {
        "appends": count,
        "profiled_total_us": round(total / count * US_PER_S, 1),
        "parts_us": per_append,
    }


def _matches(key: tuple[str, int, str], where: tuple[tuple[str, str], ...]) -> bool:
    filename, _, function = key
    return any(filename.endswith(file) and function == name for file, name in where)


def _inclusive(stats: dict[Any, Any], where: tuple[tuple[str, str], ...]) -> float:
    return float(sum(value[3] for key, value in stats.items() if _matches(key, where)))


def _called_from(callers: dict[Any, Any], where: tuple[tuple[str, str], ...]) -> float:
    return float(sum(value[3] for key, value in callers.items() if _matches(key, where)))
