"""The consumer's DynamoDB tables: their names (from the function's environment) and keys.

`TABLE_SCHEMAS` is the one description of the keys and indexes; `cloud/template.yaml` declares
the same (a test compares them), and the demo and tests create the tables from it.

- events      `event_id`: one item per distinct event received (records, checkpoints,
              alarms), written with a conditional put: the dedupe. `copies` counts duplicates.
              Also each P2PE block's KSN, claimed once (kind `p2pe_ksn`, `cloud.ksns`).
- payments    `event_id`: a verified record's clear metadata (never card data in clear).
- records     `journal_id` + `seq`: what the chain check needs per record (AAD, nonce,
              ciphertext, the record's chain), or a seq the terminal reported tampered.
- checkpoints `journal_id` + `first_seq`: each checkpoint and its state; open ones carry
              `open` = `open#<shard>` (a sparse index, `open-by-check`, lists what is left
              to re-check, least recently checked first; the shard, a hash of the journal,
              spreads it over a few partitions).
- alarms      `alarm_id`: each alarm raised (by the terminal or by this consumer), once.
- watermarks  `lane_id` (`<store_id>/<terminal_id>`) + `journal_id`: each journal's proven
              watermark (`proven_seq`, `proven_chain`): every seq up to it is covered by
              signed, contiguous, complete checkpoints. The terminal reads its own items
              (IAM `dynamodb:LeadingKeys` pinned to its certificate's OU and CN) and purges
              only what the cloud has proven. Journals still watched (for uncovered seqs,
              silent checkpoints, a replaced journal's tail) carry `watch` = `watch#<shard>`
              (a sparse index, `watch-by-check`, least recently checked first).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloud.errors import ConsumerConfigError

OPEN_INDEX = "open-by-check"
WATCH_INDEX = "watch-by-check"

TABLE_SCHEMAS: dict[str, dict[str, Any]] = {
    "events": {
        "KeySchema": [{"AttributeName": "event_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "event_id", "AttributeType": "S"}],
    },
    "payments": {
        "KeySchema": [{"AttributeName": "event_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "event_id", "AttributeType": "S"}],
    },
    "records": {
        "KeySchema": [
            {"AttributeName": "journal_id", "KeyType": "HASH"},
            {"AttributeName": "seq", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "journal_id", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
        ],
    },
    "checkpoints": {
        "KeySchema": [
            {"AttributeName": "journal_id", "KeyType": "HASH"},
            {"AttributeName": "first_seq", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "journal_id", "AttributeType": "S"},
            {"AttributeName": "first_seq", "AttributeType": "N"},
            {"AttributeName": "open", "AttributeType": "S"},
            {"AttributeName": "checked_at", "AttributeType": "N"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": OPEN_INDEX,
                "KeySchema": [
                    {"AttributeName": "open", "KeyType": "HASH"},
                    {"AttributeName": "checked_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    },
    "alarms": {
        "KeySchema": [{"AttributeName": "alarm_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "alarm_id", "AttributeType": "S"}],
    },
    "watermarks": {
        "KeySchema": [
            {"AttributeName": "lane_id", "KeyType": "HASH"},
            {"AttributeName": "journal_id", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "lane_id", "AttributeType": "S"},
            {"AttributeName": "journal_id", "AttributeType": "S"},
            {"AttributeName": "watch", "AttributeType": "S"},
            {"AttributeName": "checked_at", "AttributeType": "N"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": WATCH_INDEX,
                "KeySchema": [
                    {"AttributeName": "watch", "KeyType": "HASH"},
                    {"AttributeName": "checked_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    },
}

# The function's environment variable naming each table (the template sets them).
TABLE_ENV = {name: f"{name.upper()}_TABLE" for name in TABLE_SCHEMAS}


@dataclass(frozen=True)
class TableNames:
    events: str
    payments: str
    records: str
    checkpoints: str
    alarms: str
    watermarks: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TableNames:
        missing = [var for var in TABLE_ENV.values() if not env.get(var)]
        if missing:
            raise ConsumerConfigError(f"the environment lacks {', '.join(sorted(missing))}")
        return cls(**{name: env[var] for name, var in TABLE_ENV.items()})

    @classmethod
    def prefixed(cls, prefix: str) -> TableNames:
        """`{prefix}-events` and so on: for the demo and tests."""
        return cls(**{name: f"{prefix}-{name}" for name in TABLE_SCHEMAS})

    def as_env(self) -> dict[str, str]:
        return {var: getattr(self, name) for name, var in TABLE_ENV.items()}


def create_tables(dynamodb: Any, names: TableNames) -> None:
    """Create the tables (on-demand billing) and wait until they exist."""
    for name, schema in TABLE_SCHEMAS.items():
        dynamodb.create_table(
            TableName=getattr(names, name), BillingMode="PAY_PER_REQUEST", **schema
        )
    waiter = dynamodb.get_waiter("table_exists")
    for name in TABLE_SCHEMAS:
        waiter.wait(TableName=getattr(names, name), WaiterConfig={"Delay": 1, "MaxAttempts": 30})
