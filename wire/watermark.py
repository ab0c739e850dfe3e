"""The proven watermark: how far the cloud has proven a journal, and where a terminal reads it.

The consumer keeps, per journal, the highest seq up to which every record is covered by
signed checkpoints whose ranges follow each other without a gap and whose records all
arrived and chain (`proven_seq`, and the chain value there, `proven_chain`). It publishes
them in the `watermarks` table, keyed by `lane_id` and `journal_id`; a terminal reads its own
item (its IAM policy allows only the `lane_id` its certificate names) and erases a delivered
record only once the cloud has proven it.
"""

from __future__ import annotations

LANE_SEPARATOR = "/"
LANE_ID = "lane_id"
JOURNAL_ID = "journal_id"
PROVEN_SEQ = "proven_seq"
PROVEN_CHAIN = "proven_chain"
UPDATED_AT = "updated_at"  # epoch seconds of the consumer's last advance


def lane_id(store_id: str, terminal_id: str) -> str:
    """The watermark item's partition key: what a terminal's certificate names (OU/CN)."""
    return f"{store_id}{LANE_SEPARATOR}{terminal_id}"
