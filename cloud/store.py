"""The consumer's DynamoDB access: conditional writes, transactions, range queries.

Items are plain dicts in and out (boto3's type (de)serializer does the attribute values);
every read the checks depend on is strongly consistent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from cloud.tables import OPEN_INDEX, TableNames

CONDITION_FAILED = "ConditionalCheckFailed"
OPEN_MARK = "open"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


@dataclass(frozen=True)
class Put:
    """One put of a transaction; `new_key` makes it conditional on the item not existing."""

    table: str
    values: Mapping[str, Any]
    new_key: str | None = None

    def request(self) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table, "Item": to_item(self.values)}
        if self.new_key is not None:
            put["ConditionExpression"] = "attribute_not_exists(#k)"
            put["ExpressionAttributeNames"] = {"#k": self.new_key}
        return {"Put": put}


class Store:
    def __init__(self, dynamodb: Any, tables: TableNames) -> None:
        self._db = dynamodb
        self.tables = tables

    def get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        reply = self._db.get_item(TableName=table, Key=to_item(key), ConsistentRead=True)
        item = reply.get("Item")
        return from_item(item) if item else None

    def seen(self, event_id: str) -> bool:
        return self.get(self.tables.events, {"event_id": event_id}) is not None

    def count_copy(self, event_id: str) -> None:
        """One more copy of an event already received (for the figures; never re-applied)."""
        self._db.update_item(
            TableName=self.tables.events,
            Key=to_item({"event_id": event_id}),
            UpdateExpression="ADD copies :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    def commit_new(self, event_id: str, kind: str, now: float, puts: Sequence[Put]) -> bool:
        """Write the event's dedupe marker and its effects atomically; False if it was there.

        The marker is a conditional put on `event_id` in the same transaction as the effects,
        so a crash between them cannot leave an effect without its marker or the reverse."""
        marker = Put(
            self.tables.events,
            {"event_id": event_id, "kind": kind, "received_at": int(now), "copies": 1},
            new_key="event_id",
        )
        try:
            self._db.transact_write_items(TransactItems=[put.request() for put in (marker, *puts)])
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if any(reason.get("Code") == CONDITION_FAILED for reason in reasons):
                return False
            raise
        return True

    def put_new(self, table: str, key_name: str, values: Mapping[str, Any]) -> bool:
        """A conditional put; False if an item with that key exists."""
        try:
            self._db.put_item(**Put(table, values, new_key=key_name).request()["Put"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == f"{CONDITION_FAILED}Exception":
                return False
            raise
        return True

    def records_between(self, journal_id: str, first: int, last: int) -> Iterator[dict[str, Any]]:
        """The records table's items of one journal, seq first..last, in seq order."""
        arguments: dict[str, Any] = {
            "TableName": self.tables.records,
            "KeyConditionExpression": "journal_id = :j AND seq BETWEEN :a AND :b",
            "ExpressionAttributeValues": to_item({":j": journal_id, ":a": first, ":b": last}),
            "ConsistentRead": True,
        }
        while True:
            reply = self._db.query(**arguments)
            for item in reply.get("Items", []):
                yield from_item(item)
            if "LastEvaluatedKey" not in reply:
                return
            arguments["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def open_checkpoints(self, limit: int) -> list[dict[str, Any]]:
        """Keys of checkpoints still open (oldest first), from the sparse index."""
        reply = self._db.query(
            TableName=self.tables.checkpoints,
            IndexName=OPEN_INDEX,
            KeyConditionExpression="#o = :o",
            ExpressionAttributeNames={"#o": "open"},
            ExpressionAttributeValues=to_item({":o": OPEN_MARK}),
            Limit=limit,
        )
        return [from_item(item) for item in reply.get("Items", [])]

    def update_checkpoint(
        self, journal_id: str, first_seq: int, values: Mapping[str, Any], close: bool
    ) -> None:
        """Set `values` on a checkpoint; `close` takes it out of the open index."""
        names = {f"#f{i}": name for i, name in enumerate(values)}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(values)))
        expression = f"SET {sets}" + (" REMOVE #open" if close else "")
        if close:
            names["#open"] = "open"
        self._db.update_item(
            TableName=self.tables.checkpoints,
            Key=to_item({"journal_id": journal_id, "first_seq": first_seq}),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(
                {f":v{i}": value for i, value in enumerate(values.values())}
            ),
        )

    def scan(self, table: str) -> Iterator[dict[str, Any]]:
        """Every item of a table (the demo's and tests' report; never on the hot path)."""
        for page in self._db.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page.get("Items", []):
                yield from_item(item)
