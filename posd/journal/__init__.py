"""The journal: durable, encrypted, hash-chained records in one SQLite file.

`store` is the journal itself (capture, outbox, retention, inspection), `rows` maps rows to
records, `verify` checks a whole journal, `schema` holds its forward-only migrations, `files`
its private place on disk and `settings` the `[journal]` config section.
"""

from posd.journal.files import JOURNAL_FILE
from posd.journal.rows import RecordState
from posd.journal.settings import JournalSettings
from posd.journal.store import MAX_SECRET_BYTES, DuplicateClientRef, Journal
from posd.journal.verify import Problem, VerifyReport

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
