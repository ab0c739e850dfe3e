"""The consumer's DynamoDB access: batch reads and writes, conditional puts, range queries.

Items are plain dicts in and out (boto3's type (de)serializer does the attribute values);
every read the checks depend on is strongly consistent. No transactions: each effect is keyed
by the event's identity and so idempotent, and the dedupe marker is written last (`apply`);
that costs half the write capacity of TransactWriteItems for the same guarantee.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from cloud.errors import ConsumerError
from cloud.tables import OPEN_INDEX, TABLE_SCHEMAS, TableNames

CONDITION_FAILED = "ConditionalCheckFailed"
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
BATCH_WRITE_LIMIT = 25  # puts per BatchWriteItem
# The open index's partition key: `open#<shard>`, the shard a hash of the journal, so that the
# open checkpoints of many lanes never share one hot partition. `open` alone is the value
# before sharding: still queried, so checkpoints filed then are still re-checked.
OPEN_MARK = "open"
OPEN_SHARDS = 4


def shard_of(journal_id: str, shards: int) -> int:
    """A stable shard number for a journal (not Python's salted `hash`)."""
    return int.from_bytes(hashlib.sha256(journal_id.encode()).digest()[:4], "big") % shards


def open_mark(journal_id: str) -> str:
    return f"{OPEN_MARK}#{shard_of(journal_id, OPEN_SHARDS)}"


OPEN_MARKS = (OPEN_MARK, *(f"{OPEN_MARK}#{n}" for n in range(OPEN_SHARDS)))


class WriteConflict(ConsumerError):
    """A conditional put found another event's item under the same key: never overwritten,
    never taken for written."""

    code = "write_conflict"


def condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == f"{CONDITION_FAILED}Exception"


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


@dataclass(frozen=True)
class Put:
    """One put; `new_key` makes it conditional on the item not existing."""

    table: str
    values: Mapping[str, Any]
    new_key: str | None = None

    def request(self) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table, "Item": to_item(self.values)}
        if self.new_key is not None:
            put["ConditionExpression"] = "attribute_not_exists(#k)"
            put["ExpressionAttributeNames"] = {"#k": self.new_key}
        return {"Put": put}


@dataclass(frozen=True)
class Effects:
    """What applying one new event writes, besides its dedupe marker."""

    event_id: str
    kind: str
    puts: Sequence[Put]
    digest: str = ""  # of the event's content (`cloud.consumer.content_digest`)


class Store:
    def __init__(self, dynamodb: Any, tables: TableNames) -> None:
        self._db = dynamodb
        self.tables = tables

    @property
    def dynamodb(self) -> Any:
        """The boto3 client (for the modules with their own queries: `cloud.watermarks`)."""
        return self._db

    def get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        reply = self._db.get_item(TableName=table, Key=to_item(key), ConsistentRead=True)
        item = reply.get("Item")
        return from_item(item) if item else None

    def seen(self, event_ids: Collection[str]) -> dict[str, str]:
        """Which of these events were received already, each with the digest of the content
        applied for it (`Effects.digest`; "" for markers written before digests were kept):
        consistent batch reads."""
        found: dict[str, str] = {}
        wanted = sorted(event_ids)
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            keys = [to_item({"event_id": e}) for e in wanted[start : start + BATCH_GET_LIMIT]]
            request: dict[str, Any] = {
                self.tables.events: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": "event_id, digest",
                }
            }
            while request:
                reply = self._db.batch_get_item(RequestItems=request)
                for item in reply.get("Responses", {}).get(self.tables.events, []):
                    marker = from_item(item)
                    found[marker["event_id"]] = str(marker.get("digest", ""))
                request = reply.get("UnprocessedKeys") or {}
        return found

    def count_copy(self, event_id: str) -> None:
        """One more copy of an event already received (for the figures; never re-applied).

        Conditional: counting a copy must never create the marker of an event not applied."""
        unless_condition_failed(
            lambda: self._db.update_item(
                TableName=self.tables.events,
                Key=to_item({"event_id": event_id}),
                UpdateExpression="ADD copies :one",
                ConditionExpression="attribute_exists(event_id)",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        )

    def apply(self, effects: Sequence[Effects], now: float) -> set[str]:
        """Apply new events: their effects, then their dedupe markers; returns the event_ids
        whose marker this call wrote (the others lost a race: another invocation applied
        them). Raises if anything fails; the caller then applies them one by one.

        Effects are keyed by the event's identity (a payment by `event_id`, a record by
        journal and seq), so writing them twice writes the same items: a crash before the
        marker only means the retry writes them again. The marker, a conditional put on
        `event_id`, goes last, so it never stands for effects that were not written.

        A conditional put (`new_key`) that finds an item is checked: the same event's item
        (a retry after a crash) counts as written; another event's raises `WriteConflict`,
        and that effect's marker is not written."""
        plain = [put for effect in effects for put in effect.puts if put.new_key is None]
        for start in range(0, len(plain), BATCH_WRITE_LIMIT):
            self.write_batch(plain[start : start + BATCH_WRITE_LIMIT])
        for effect in effects:
            for put in effect.puts:
                if put.new_key is not None and not self.put_new(put.table, put.new_key, put.values):
                    self._same_event(put, effect.event_id)
        marker = {"received_at": int(now), "copies": 1}
        return {
            effect.event_id
            for effect in effects
            if self.put_if(
                self.tables.events,
                {
                    "event_id": effect.event_id,
                    "kind": effect.kind,
                    "digest": effect.digest,
                    **marker,
                },
                # a marker stands for the content applied: other content under the same id
                # (a forgery that came first) does not make the genuine event a duplicate
                "attribute_not_exists(#k) OR #d <> :d",
                {"#k": "event_id", "#d": "digest"},
                {":d": effect.digest},
            )
        }

    def _same_event(self, put: Put, event_id: str) -> None:
        """Raise unless the item a conditional put found is this event's own."""
        key = {name: put.values[name] for name in self._key_names(put)}
        found = self.get(put.table, key)
        if found is None or found.get("event_id") != event_id:
            raise WriteConflict(
                f"{put.table} already holds {key} from event {(found or {}).get('event_id')}, "
                f"not from {event_id}"
            )

    def _key_names(self, put: Put) -> list[str]:
        schema = next(
            schema
            for name, schema in TABLE_SCHEMAS.items()
            if getattr(self.tables, name) == put.table
        )
        return [key["AttributeName"] for key in schema["KeySchema"]]

    def write_batch(self, puts: Sequence[Put]) -> None:
        request: dict[str, Any] = {}
        for put in puts:
            request.setdefault(put.table, []).append({"PutRequest": {"Item": to_item(put.values)}})
        while request:
            reply = self._db.batch_write_item(RequestItems=request)
            request = reply.get("UnprocessedItems") or {}

    def put_new(self, table: str, key_name: str, values: Mapping[str, Any]) -> bool:
        """A conditional put; False if an item with that key exists."""
        put = Put(table, values, new_key=key_name).request()["Put"]
        return unless_condition_failed(lambda: self._db.put_item(**put))

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
        """Keys (and `checked_at`) of checkpoints still open, least recently checked first."""
        return self.least_recently_checked(
            self.tables.checkpoints, OPEN_INDEX, "open", OPEN_MARKS, limit
        )

    def least_recently_checked(
        self, table: str, index: str, shard_key: str, marks: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        """Items of a sharded sparse index (partition `shard_key`, one of `marks`; sort key
        `checked_at`), least recently checked first: each shard's oldest `limit`, merged."""
        found: list[dict[str, Any]] = []
        for mark in marks:
            reply = self._db.query(
                TableName=table,
                IndexName=index,
                KeyConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": shard_key},
                ExpressionAttributeValues=to_item({":s": mark}),
                Limit=limit,
            )
            found.extend(from_item(item) for item in reply.get("Items", []))
        found.sort(key=lambda item: item.get("checked_at", 0))
        return found[:limit]

    def update_checkpoint(
        self,
        journal_id: str,
        first_seq: int,
        values: Mapping[str, Any],
        close: bool,
        checked_at: int,
    ) -> bool:
        """Set `values` on a checkpoint that is still open and was last checked at
        `checked_at` (what the caller read); `close` takes it out of the open index. False if
        another invocation got there first: its verdict stands, this (stale) one is dropped."""
        names = {f"#f{i}": name for i, name in enumerate(values)}
        names.update({"#open": "open", "#checked": "checked_at"})
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(values)))
        expression = f"SET {sets}" + (" REMOVE #open" if close else "")
        bound = {f":v{i}": value for i, value in enumerate(values.values())}
        return unless_condition_failed(
            lambda: self._db.update_item(
                TableName=self.tables.checkpoints,
                Key=to_item({"journal_id": journal_id, "first_seq": first_seq}),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(#open) AND #checked = :read",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item({**bound, ":read": checked_at}),
            )
        )

    def mark_checkpoint(self, journal_id: str, first_seq: int, values: Mapping[str, Any]) -> None:
        """Set `values` on a filed checkpoint whatever its state (an equivocation's marks)."""
        names = {f"#f{i}": name for i, name in enumerate(values)}
        self._db.update_item(
            TableName=self.tables.checkpoints,
            Key=to_item({"journal_id": journal_id, "first_seq": first_seq}),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values))),
            ConditionExpression="attribute_exists(first_seq)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(
                {f":v{i}": value for i, value in enumerate(values.values())}
            ),
        )

    def checkpoints_from(
        self, journal_id: str, first_seq: int, limit: int, forward: bool = True
    ) -> list[dict[str, Any]]:
        """A journal's checkpoints from `first_seq` on (`forward`) or up to it, in that order."""
        condition = "first_seq >= :s" if forward else "first_seq <= :s"
        reply = self._db.query(
            TableName=self.tables.checkpoints,
            KeyConditionExpression=f"journal_id = :j AND {condition}",
            ExpressionAttributeValues=to_item({":j": journal_id, ":s": first_seq}),
            ScanIndexForward=forward,
            ConsistentRead=True,
            Limit=limit,
        )
        return [from_item(item) for item in reply.get("Items", [])]

    def record_from(self, journal_id: str, seq: int, forward: bool) -> dict[str, Any] | None:
        """A journal's first record at or after `seq` (`forward`), or last at or before it."""
        condition = "seq >= :s" if forward else "seq <= :s"
        reply = self._db.query(
            TableName=self.tables.records,
            KeyConditionExpression=f"journal_id = :j AND {condition}",
            ExpressionAttributeValues=to_item({":j": journal_id, ":s": seq}),
            ProjectionExpression="seq, event_id",
            ScanIndexForward=forward,
            ConsistentRead=True,
            Limit=1,
        )
        items = reply.get("Items", [])
        return from_item(items[0]) if items else None

    def count(self, table: str) -> int:
        pages = self._db.get_paginator("scan").paginate(
            TableName=table, Select="COUNT", ConsistentRead=True
        )
        return sum(int(page["Count"]) for page in pages)

    def scan(self, table: str) -> Iterator[dict[str, Any]]:
        """Every item of a table (the demo's and tests' report; never on the hot path)."""
        for page in self._db.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page.get("Items", []):
                yield from_item(item)

    def put_if(
        self,
        table: str,
        values: Mapping[str, Any],
        condition: str,
        names: Mapping[str, str],
        operands: Mapping[str, Any] | None = None,
    ) -> bool:
        """A put under `condition`; False if the condition did not hold."""
        arguments: dict[str, Any] = {
            "TableName": table,
            "Item": to_item(values),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": dict(names),
        }
        if operands:
            arguments["ExpressionAttributeValues"] = to_item(operands)
        return unless_condition_failed(lambda: self._db.put_item(**arguments))

    def remove_if(
        self,
        table: str,
        key: Mapping[str, Any],
        attribute: str,
        condition: str,
        operands: Mapping[str, Any],
        names: Mapping[str, str],
    ) -> bool:
        """Remove one attribute of an item under `condition`; False if it did not hold."""
        return unless_condition_failed(
            lambda: self._db.update_item(
                TableName=table,
                Key=to_item(key),
                UpdateExpression="REMOVE #a",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#a": attribute, **names},
                ExpressionAttributeValues=to_item(operands),
            )
        )


def unless_condition_failed(write: Callable[[], object]) -> bool:
    """Run a conditional write: False if its condition did not hold (anything else raises)."""
    try:
        write()
    except ClientError as error:
        if condition_failed(error):
            return False
        raise
    return True
