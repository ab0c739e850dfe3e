"""The watermarks table: each journal's proven watermark, and what the continuity checks keep.

One item per journal (`lane_id` + `journal_id`, `wire.watermark`): `proven_seq` and
`proven_chain` (published: the terminal reads them), `updated_at`; and for the consumer's own
checks `store_id`, `terminal_id`, `last_checkpoint_at` (when the journal's latest checkpoint
was received), `last_checkpoint_made_at` (when the terminal made it) and `last_checkpoint_seq`
(the last seq it covers) for the fair rate's count (`cloud.fair_rate`),
`replaced_by`/`replaced_at` (a newer journal took over the lane) and, while the journal is
watched, `watch` = `watch#<shard>` with `checked_at` (the sparse index
`watch-by-check`, least recently checked first).

The watermark only moves forward, and only along the chain: each advance is conditional on
the item still holding what the caller read (`proven_seq`, `proven_chain`), so two
invocations never skip or repeat a range. The one move back is an equivocation's
(`hold_back`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud.store import Store, from_item, shard_of, to_item, unless_condition_failed
from cloud.tables import WATCH_INDEX
from wire.envelope import GENESIS_CHAIN
from wire.watermark import JOURNAL_ID, LANE_ID, PROVEN_CHAIN, PROVEN_SEQ, UPDATED_AT

WATCH = "watch"
WATCH_SHARDS = 4
WATCH_MARKS = tuple(f"{WATCH}#{n}" for n in range(WATCH_SHARDS))
CHECKED_AT = "checked_at"
LAST_CHECKPOINT_AT = "last_checkpoint_at"
# When the terminal made that checkpoint (its `created_at`, epoch seconds): long before it was
# received, it came from a backlog (`wire.fair_rate.sharing_lanes`).
LAST_CHECKPOINT_MADE_AT = "last_checkpoint_made_at"
# The last seq that checkpoint covers: a watermark that reached it after a checkpoint from a
# backlog has delivered all the lane told of (`wire.fair_rate.sharing_lanes`, caught up).
LAST_CHECKPOINT_SEQ = "last_checkpoint_seq"
REPLACED_BY = "replaced_by"
REPLACED_AT = "replaced_at"
EQUIVOCATION_SEQ = "equivocation_seq"
GENESIS_HEX = GENESIS_CHAIN.hex()


class Watermarks:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store.dynamodb
        self._table = store.tables.watermarks

    def _key(self, lane: str, journal_id: str) -> dict[str, Any]:
        return to_item({LANE_ID: lane, JOURNAL_ID: journal_id})

    def get(self, lane: str, journal_id: str) -> dict[str, Any] | None:
        reply = self._db.get_item(
            TableName=self._table, Key=self._key(lane, journal_id), ConsistentRead=True
        )
        item = reply.get("Item")
        return from_item(item) if item else None

    def create(
        self, lane: str, journal_id: str, store_id: str, terminal_id: str, now: float
    ) -> bool:
        """A journal's item at seq 0 and the genesis chain, watched; False if it exists."""
        item = {
            LANE_ID: lane,
            JOURNAL_ID: journal_id,
            PROVEN_SEQ: 0,
            PROVEN_CHAIN: GENESIS_HEX,
            UPDATED_AT: int(now),
            "store_id": store_id,
            "terminal_id": terminal_id,
            WATCH: f"{WATCH}#{shard_of(journal_id, WATCH_SHARDS)}",
            CHECKED_AT: int(now),
        }
        return unless_condition_failed(
            lambda: self._db.put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(#j)",
                ExpressionAttributeNames={"#j": JOURNAL_ID},
            )
        )

    def lane(self, lane: str) -> list[dict[str, Any]]:
        """Every journal's item of one lane (a lane has a handful: one per reset)."""
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#l = :l",
            "ExpressionAttributeNames": {"#l": LANE_ID},
            "ExpressionAttributeValues": to_item({":l": lane}),
            "ConsistentRead": True,
        }
        found: list[dict[str, Any]] = []
        while True:
            reply = self._db.query(**arguments)
            found.extend(from_item(item) for item in reply.get("Items", []))
            if "LastEvaluatedKey" not in reply:
                return found
            arguments["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def watched(self, limit: int) -> list[dict[str, Any]]:
        """Keys of watched journals, least recently checked first (each shard's oldest)."""
        return self._store.least_recently_checked(
            self._table, WATCH_INDEX, WATCH, WATCH_MARKS, limit
        )

    def advance(
        self,
        lane: str,
        journal_id: str,
        read: tuple[int, str],
        proven: tuple[int, str],
        now: float,
    ) -> bool:
        """Move the watermark from `read` (seq, chain) to `proven`; False if the item no
        longer holds `read` (another invocation moved it, or an equivocation held it back)."""
        return unless_condition_failed(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=self._key(lane, journal_id),
                UpdateExpression="SET #s = :s, #c = :c, #u = :u",
                ConditionExpression="#s = :rs AND #s < :s AND #c = :rc",
                ExpressionAttributeNames={"#s": PROVEN_SEQ, "#c": PROVEN_CHAIN, "#u": UPDATED_AT},
                ExpressionAttributeValues=to_item(
                    {
                        ":s": proven[0],
                        ":c": proven[1],
                        ":u": int(now),
                        ":rs": read[0],
                        ":rc": read[1],
                    }
                ),
            )
        )

    def hold_back(
        self, lane: str, journal_id: str, seq: int, chain: str, equivocation_seq: int, now: float
    ) -> None:
        """An equivocation at `equivocation_seq`: the watermark goes back to (or stays at) the
        range before it, `seq` with `chain`, and never passes it again."""
        held = unless_condition_failed(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=self._key(lane, journal_id),
                UpdateExpression="SET #s = :s, #c = :c, #u = :u, #e = :e",
                ConditionExpression="#s > :s",
                ExpressionAttributeNames={
                    "#s": PROVEN_SEQ,
                    "#c": PROVEN_CHAIN,
                    "#u": UPDATED_AT,
                    "#e": EQUIVOCATION_SEQ,
                },
                ExpressionAttributeValues=to_item(
                    {":s": seq, ":c": chain, ":u": int(now), ":e": equivocation_seq}
                ),
            )
        )
        if not held:  # already at or before it: only remember where it stops (no item yet:
            # nothing proven to hold back)
            unless_condition_failed(
                lambda: self.update(lane, journal_id, {EQUIVOCATION_SEQ: equivocation_seq})
            )

    def update(
        self, lane: str, journal_id: str, values: Mapping[str, Any], unwatch: bool = False
    ) -> None:
        """Set the consumer's own fields (never the watermark's); `unwatch` ends the
        journal's checks."""
        names = {f"#f{i}": name for i, name in enumerate(values)}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(values)))
        expression = f"SET {sets}" if values else ""
        if unwatch:
            names["#w"] = WATCH
            expression += " REMOVE #w"
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(lane, journal_id),
            "UpdateExpression": expression.strip(),
            "ConditionExpression": "attribute_exists(#j)",
            "ExpressionAttributeNames": {**names, "#j": JOURNAL_ID},
        }
        if values:
            arguments["ExpressionAttributeValues"] = to_item(
                {f":v{i}": value for i, value in enumerate(values.values())}
            )
        self._db.update_item(**arguments)

    def note_checkpoint(
        self,
        lane: str,
        journal_id: str,
        received_at: float,
        made_at: float | None = None,
        last_seq: int | None = None,
    ) -> None:
        """The journal's latest checkpoint, covering seqs up to `last_seq`, was received at
        `received_at`, made at `made_at` (None: not known) (kept the latest)."""
        values: dict[str, Any] = {":t": int(received_at)}
        expression = "SET #t = :t"
        removed = []
        for name, value in (("#m", made_at), ("#q", last_seq)):
            if value is None:
                removed.append(name)
            else:
                values[f":{name[1]}"] = int(value)
                expression += f", {name} = :{name[1]}"
        if removed:
            expression += " REMOVE " + ", ".join(removed)
        unless_condition_failed(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=self._key(lane, journal_id),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(#j) AND "
                "(attribute_not_exists(#t) OR #t < :t)",
                ExpressionAttributeNames={
                    "#t": LAST_CHECKPOINT_AT,
                    "#m": LAST_CHECKPOINT_MADE_AT,
                    "#q": LAST_CHECKPOINT_SEQ,
                    "#j": JOURNAL_ID,
                },
                ExpressionAttributeValues=to_item(values),
            )
        )
