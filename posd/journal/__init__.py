"""The journal: durable, encrypted, hash-chained records in one SQLite file.

`store` is the journal itself, a front over its parts: `database` (connections, lock,
transactions), `appending` (capture), `leasing` and `delivery` (the outbox), `salvage`
(every path around a damaged page), `counts` (summaries, stats) and `retention` (purge).
`rows` maps rows to records, `verify` checks a whole journal, `schema` holds its
forward-only migrations, `files` its private place on disk, `identity` what tells this
journal from a replaced or truncated one, `settings` the `[journal]` config section,
`backlog` the free upper bound of the backlog that capture's offline limits use, and
`priority` how a payment holds delivery's writes back.

The names below are loaded on first use (PEP 562): reading the config imports
`posd.journal.settings`, and that must not pull in SQLite helpers and the rest of the store
(a thin CLI command would pay for them at every start).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from posd.journal.appending import MAX_SECRET_BYTES, DuplicateClientRef
    from posd.journal.files import JOURNAL_FILE
    from posd.journal.rows import RecordState
    from posd.journal.settings import JournalSettings
    from posd.journal.store import Journal
    from posd.journal.verify import Problem, VerifyReport

_WHERE = {
    "JOURNAL_FILE": "posd.journal.files",
    "MAX_SECRET_BYTES": "posd.journal.appending",
    "DuplicateClientRef": "posd.journal.appending",
    "Journal": "posd.journal.store",
    "JournalSettings": "posd.journal.settings",
    "Problem": "posd.journal.verify",
    "RecordState": "posd.journal.rows",
    "VerifyReport": "posd.journal.verify",
}

__all__ = [
    "JOURNAL_FILE",
    "MAX_SECRET_BYTES",
    "DuplicateClientRef",
    "Journal",
    "JournalSettings",
    "Problem",
    "RecordState",
    "VerifyReport",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
