"""Checkpoints prove continuity: signed, one statement per start, following each other, and
the proven watermark the consumer publishes from them. Through the real rig (moto DynamoDB,
EventBridge, SQS) with real posd records."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud.alarms import AlarmBus, Alarms
from cloud.consumer import (
    DEFAULT_CHECKPOINT_SILENCE_SECONDS,
    Consumer,
    ConsumerSettings,
    Outcome,
)
from cloud.continuity import Continuity, ContinuitySettings
from cloud.fair_rate import DEFAULT_WINDOW_SECONDS as DAY_SECONDS
from cloud.fair_rate import active_lanes
from cloud.kms import KmsUnwrapper
from cloud.ranges import Ranges
from cloud.store import Effects, Put, WriteConflict, to_item
from cloud.watermarks import LAST_CHECKPOINT_MADE_AT
from demo.localaws.emulator import LocalAws
from demo.pki import LocalCa, TerminalCredentials
from tests.cloud.conftest import (
    CA,
    GRACE_SECONDS,
    RECORDS,
    STORE_ID,
    TERMINAL_ID,
    Delivered,
    Rig,
    alarm_entry,
    checkpoint_entry,
    deliver,
)
from wire.envelope import GENESIS_CHAIN
from wire.events import parse_message
from wire.fair_rate import BEHIND_SECONDS
from wire.watermark import lane_id

GENESIS = GENESIS_CHAIN.hex()
SILENCE = DEFAULT_CHECKPOINT_SILENCE_SECONDS


def watermark(rig: Rig, journal_id: str) -> dict[str, Any] | None:
    key = {"lane_id": lane_id(STORE_ID, TERMINAL_ID), "journal_id": journal_id}
    return rig.store.get(rig.store.tables.watermarks, key)


def proven(rig: Rig, journal_id: str) -> tuple[int, str] | None:
    item = watermark(rig, journal_id)
    return None if item is None else (int(item["proven_seq"]), str(item["proven_chain"]))


def named(alarms: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [a for a in alarms if a["alarm"] == name]


def stored(rig: Rig, name: str) -> list[dict[str, Any]]:
    return named(rig.items("alarms"), name)


def records_except(delivered: Delivered, *seqs: int) -> list[str]:
    return [body for seq, body in enumerate(delivered.records, 1) if seq not in seqs]


def later(rig: Rig, seconds: float) -> list[dict[str, Any]]:
    """Move the clock, run the scheduled re-check; the alarms raised."""
    rig.clock.now += seconds
    rig.consumer.recheck_open()
    return rig.raised()


# -- 1. equivocation --------------------------------------------------------------------------


def test_a_second_checkpoint_for_the_same_start_is_an_equivocation_and_holds_the_watermark(
    rig: Rig, delivered: Delivered
) -> None:
    """A short 1..4 came first, then the genuine 1..12 whose records 5..11 never arrived: the
    second must not be taken as filed, and the journal is not proven past the equivocation."""
    journal = delivered.journal_id
    rig.send(records_except(delivered, *range(5, 12)))
    short = checkpoint_entry(delivered, 1, 4)
    rig.send_entries([short])
    rig.drain()
    assert rig.checkpoint(journal, 1)["state"] == "complete"
    assert proven(rig, journal) == (4, delivered.chains[3])
    rig.raised()

    genuine = checkpoint_entry(delivered, 1, RECORDS)
    rig.send_entries([genuine])
    rig.drain()

    (alarm,) = named(rig.raised(), "equivocation")
    assert (alarm["journal_id"], alarm["store_id"], alarm["terminal_id"]) == (
        journal,
        STORE_ID,
        TERMINAL_ID,
    )
    statements = sorted(
        (c["first_seq"], c["last_seq"], c["chain_before"], c["chain"]) for c in alarm["checkpoints"]
    )
    assert statements == [
        (1, 4, GENESIS, delivered.chains[3]),
        (1, RECORDS, GENESIS, delivered.chains[RECORDS - 1]),
    ]
    event_ids = {json.loads(e["Detail"])["event_id"] for e in (short, genuine)}
    assert set(alarm["event_ids"]) == event_ids
    assert [a["alarm_id"] for a in stored(rig, "equivocation")] == [alarm["alarm_id"]]
    (filed,) = rig.items("checkpoints")  # the second statement is not filed over the first
    assert (filed["last_seq"], filed["equivocated_by"]) == (
        4,
        json.loads(genuine["Detail"])["event_id"],
    )
    assert proven(rig, journal) == (0, GENESIS)  # held back before the equivocation

    later(rig, GRACE_SECONDS)
    assert proven(rig, journal) == (0, GENESIS)


# -- 2. continuity ----------------------------------------------------------------------------


def test_seqs_between_two_checkpoints_that_no_checkpoint_covers_are_alarmed(
    rig: Rig, delivered: Delivered
) -> None:
    """1..4 and 9..12 arrived; the checkpoint 5..8 and its records were lost."""
    journal = delivered.journal_id
    rig.send(records_except(delivered, 5, 6, 7, 8))
    rig.send_entries([checkpoint_entry(delivered, 1, 4), checkpoint_entry(delivered, 9, RECORDS)])
    rig.drain()
    assert rig.checkpoint(journal, 1)["state"] == rig.checkpoint(journal, 9)["state"] == "complete"
    assert rig.raised() == []  # within the grace period: the checkpoint may be on its way
    assert proven(rig, journal) == (4, delivered.chains[3])

    (alarm,) = later(rig, GRACE_SECONDS)
    assert alarm["alarm"] == "uncovered_seqs"
    assert (alarm["journal_id"], alarm["store_id"], alarm["terminal_id"]) == (
        journal,
        STORE_ID,
        TERMINAL_ID,
    )
    assert (alarm["first_seq"], alarm["last_seq"], alarm["proven_seq"]) == (5, 8, 4)
    assert later(rig, GRACE_SECONDS) == []  # raised once
    assert len(stored(rig, "uncovered_seqs")) == 1
    assert proven(rig, journal) == (4, delivered.chains[3])  # never past the hole


def test_a_range_that_does_not_chain_from_the_one_before_is_a_discontinuity(
    rig: Rig, delivered: Delivered
) -> None:
    """Seq 5 reported tampered: the range 5..12 cannot recompute its first link, so only
    the continuity with 1..4 tells that its `chain_before` is not where 1..4 ended."""
    journal = delivered.journal_id
    rig.send(records_except(delivered, 5))
    rig.send_entries(
        [
            alarm_entry(delivered, 5),
            checkpoint_entry(delivered, 1, 4),
            checkpoint_entry(delivered, 5, RECORDS, chain_before="ab" * 32),
        ]
    )
    rig.drain()
    assert rig.checkpoint(journal, 5)["state"] == "complete"  # the range alone holds

    (alarm,) = rig.raised()
    assert alarm["alarm"] == "chain_discontinuity"
    assert (alarm["journal_id"], alarm["store_id"], alarm["terminal_id"]) == (
        journal,
        STORE_ID,
        TERMINAL_ID,
    )
    assert (alarm["first_seq"], alarm["last_seq"], alarm["chain_before"]) == (5, 12, "ab" * 32)
    assert (alarm["previous_last_seq"], alarm["previous_chain"]) == (4, delivered.chains[3])
    assert proven(rig, journal) == (4, delivered.chains[3])
    assert later(rig, GRACE_SECONDS) == []


def test_a_lane_that_keeps_sending_records_but_no_checkpoints_is_alarmed(
    rig: Rig, delivered: Delivered
) -> None:
    journal = delivered.journal_id
    rig.send(delivered.records)
    rig.send_entries([checkpoint_entry(delivered, 1, 4)])
    rig.drain()
    assert rig.raised() == []

    (uncovered,) = later(rig, GRACE_SECONDS)
    assert uncovered["alarm"] == "uncovered_seqs"
    assert (uncovered["journal_id"], uncovered["first_seq"], uncovered["last_seq"]) == (
        journal,
        5,
        RECORDS,
    )
    (stopped,) = later(rig, SILENCE)
    assert stopped["alarm"] == "checkpoints_stopped"
    assert (stopped["journal_id"], stopped["store_id"], stopped["terminal_id"]) == (
        journal,
        STORE_ID,
        TERMINAL_ID,
    )
    assert (stopped["last_checkpointed_seq"], stopped["highest_seq"]) == (4, RECORDS)
    assert later(rig, SILENCE) == []
    assert proven(rig, journal) == (4, delivered.chains[3])


def test_a_journal_watched_from_its_records_that_never_sends_a_checkpoint_is_alarmed(
    rig: Rig, delivered: Delivered, events_client: Any
) -> None:
    """`watch_journal` is the hook the record path calls: without it a journal is watched from
    its first checkpoint on."""
    journal = delivered.journal_id
    rig.send(delivered.records)
    rig.drain()
    alarms = Alarms(rig.store, AlarmBus(events_client, rig.alarms.bus_name))
    continuity = Continuity(
        rig.store, alarms, ContinuitySettings(GRACE_SECONDS, SILENCE, 0), rig.clock
    )
    continuity.watch_journal(journal, STORE_ID, TERMINAL_ID, 1)
    assert proven(rig, journal) == (0, GENESIS)

    rig.clock.now += SILENCE
    assert continuity.check(25) == 1
    raised = {a["alarm"]: a for a in rig.raised()}
    assert set(raised) == {"uncovered_seqs", "checkpoints_stopped"}
    assert (raised["uncovered_seqs"]["first_seq"], raised["uncovered_seqs"]["last_seq"]) == (
        1,
        RECORDS,
    )
    stopped = raised["checkpoints_stopped"]
    assert (stopped["journal_id"], stopped["last_checkpointed_seq"]) == (journal, 0)
    assert stopped["last_checkpoint_at"] is None


def test_a_conditional_put_that_finds_another_events_item_is_a_conflict(rig: Rig) -> None:
    """`Store.apply` never takes a conditional put that lost to another event for written."""
    item = {"journal_id": "j", "first_seq": 1, "event_id": "first"}
    table = rig.store.tables.checkpoints
    assert rig.store.apply([Effects("first", "checkpoint", [Put(table, item, "first_seq")])], 0)
    again = Effects("first", "checkpoint", [Put(table, item, "first_seq")])
    assert rig.store.apply([again], 0) == set()  # a retry of the same event: its marker is there
    other = Effects(
        "second", "checkpoint", [Put(table, {**item, "event_id": "second"}, "first_seq")]
    )
    with pytest.raises(WriteConflict, match="from event first, not from second"):
        rig.store.apply([other], 0)
    assert rig.store.get(rig.store.tables.events, {"event_id": "second"}) is None


def test_a_closed_store_with_everything_checkpointed_stays_quiet(
    rig: Rig, delivered: Delivered
) -> None:
    rig.send(delivered.records)
    rig.send_entries([checkpoint_entry(delivered, 1, RECORDS)])
    rig.drain()
    assert later(rig, 10 * SILENCE) == []
    assert later(rig, 10 * SILENCE) == []
    assert proven(rig, delivered.journal_id) == (RECORDS, delivered.chains[-1])


def test_the_watermark_item_keeps_when_the_terminal_made_its_latest_checkpoint(
    rig: Rig, delivered: Delivered
) -> None:
    entry = checkpoint_entry(delivered, 1, RECORDS)
    made = datetime.fromisoformat(json.loads(entry["Detail"])["created_at"]).timestamp()
    rig.send(delivered.records)
    rig.send_entries([entry])
    rig.drain()
    item = watermark(rig, delivered.journal_id)
    assert item is not None
    assert int(item[LAST_CHECKPOINT_MADE_AT]) == int(made)  # fair rate: was it a backlog's?


def test_a_lane_stops_sharing_the_quota_once_it_delivered_all_its_backlogs_checkpoints_cover(
    rig: Rig, delivered: Delivered
) -> None:
    # The side lane sends a backlog's checkpoints ahead of its records, made long before.
    made = datetime.now(UTC) - timedelta(seconds=2 * BEHIND_SECONDS)
    rig.send_entries([checkpoint_entry(delivered, 1, RECORDS, created_at=made.isoformat())])
    rig.send(delivered.records[:-1])
    rig.drain()
    assert active_lanes(rig.store, rig.clock(), DAY_SECONDS) == 1  # still draining
    rig.send(delivered.records[-1:])
    rig.drain()
    assert active_lanes(rig.store, rig.clock(), DAY_SECONDS) == 0  # caught up: no silence


def test_a_new_journal_for_the_lane_closes_the_old_journals_unproven_tail(
    rig: Rig, delivered: Delivered
) -> None:
    old = delivered.journal_id
    rig.send(delivered.records)
    rig.send_entries([checkpoint_entry(delivered, 1, 4)])
    rig.drain()
    new = f"reset-{uuid.uuid4()}"
    first = checkpoint_entry(
        delivered,
        1,
        4,
        journal_id=new,
        first_seq=RECORDS + 1,
        last_seq=RECORDS + 2,
        count=2,
        chain_before=GENESIS,
        chain="cd" * 32,
    )
    rig.send_entries([first])
    rig.drain()
    assert named(rig.raised(), "journal_replaced") == []  # its tail may still be on its way

    raised = later(rig, GRACE_SECONDS)
    (replaced,) = named(raised, "journal_replaced")
    assert (replaced["journal_id"], replaced["store_id"], replaced["terminal_id"]) == (
        old,
        STORE_ID,
        TERMINAL_ID,
    )
    assert replaced["replaced_by"] == new
    assert (replaced["proven_seq"], replaced["proven_chain"]) == (4, delivered.chains[3])
    assert replaced["highest_seq"] == RECORDS
    # the old journal is no longer watched; the new one starts after seq 12 (no hole before)
    assert all(a["journal_id"] == new for a in raised if a is not replaced)
    assert named(raised, "uncovered_seqs") == []
    assert [a for a in later(rig, SILENCE) if a["journal_id"] == old] == []
    assert proven(rig, old) == (4, delivered.chains[3])


# -- 3. signatures ----------------------------------------------------------------------------

OTHER_TERMINAL = CA.issue(STORE_ID, "lane-99")
OTHER_STORE = CA.issue("store-0099", TERMINAL_ID)
FOREIGN_CA = LocalCa().issue(STORE_ID, TERMINAL_ID)
REVOKED = CA.issue(STORE_ID, TERMINAL_ID)


def altered_after_signing(delivered: Delivered) -> dict[str, Any]:
    entry = checkpoint_entry(delivered, 1, 4)
    detail = json.loads(entry["Detail"])
    detail["last_seq"] = detail["count"] = RECORDS
    detail["chain"] = delivered.chains[-1]
    return {**entry, "Detail": json.dumps(detail)}


def assert_rejected_and_harmless(
    rig: Rig, consumer: Consumer, delivered: Delivered, forged: dict[str, Any]
) -> None:
    journal = delivered.journal_id
    rig.send(delivered.records)
    rig.drain()
    (body,) = deliver(rig.events, rig.sqs, [forged])
    event_id = json.loads(forged["Detail"])["event_id"]

    assert consumer.process(parse_message(body)) is Outcome.REJECTED
    assert consumer.process(parse_message(body)) is Outcome.REJECTED  # no marker: not a dup
    (alarm,) = rig.raised()
    assert alarm["alarm"] == "forged_signature"
    assert (alarm["journal_id"], alarm["store_id"], alarm["event_id"]) == (
        journal,
        json.loads(forged["Detail"])["store_id"],
        event_id,
    )
    assert [a["alarm_id"] for a in stored(rig, "forged_signature")] == [alarm["alarm_id"]]
    assert rig.items("checkpoints") == []
    assert rig.store.get(rig.store.tables.events, {"event_id": event_id}) is None
    assert proven(rig, journal) == (0, GENESIS)  # watched from its records, nothing proven

    # the genuine checkpoint for the same start is filed as if the forged one never came
    rig.send_entries([checkpoint_entry(delivered, 1, RECORDS)])
    rig.drain()
    assert rig.checkpoint(journal, 1)["state"] == "complete"
    assert rig.raised() == []
    assert proven(rig, journal) == (RECORDS, delivered.chains[-1])


@pytest.mark.parametrize(
    "credentials",
    [None, OTHER_TERMINAL, OTHER_STORE, FOREIGN_CA],
    ids=["unsigned", "another-terminal", "another-store", "untrusted-ca"],
)
def test_a_checkpoint_not_signed_by_its_terminal_is_forged_and_never_filed(
    rig: Rig, delivered: Delivered, credentials: TerminalCredentials | None
) -> None:
    forged = checkpoint_entry(delivered, 1, 4, credentials=credentials)
    assert_rejected_and_harmless(rig, rig.consumer, delivered, forged)


def test_a_checkpoint_altered_after_signing_is_forged(rig: Rig, delivered: Delivered) -> None:
    assert_rejected_and_harmless(rig, rig.consumer, delivered, altered_after_signing(delivered))


def test_a_checkpoint_signed_with_a_revoked_certificate_is_forged(
    rig: Rig, delivered: Delivered, kms_client: Any, events_client: Any
) -> None:
    consumer = Consumer(
        rig.store,
        Alarms(rig.store, AlarmBus(events_client, rig.alarms.bus_name)),
        KmsUnwrapper(kms_client),
        CA.trust_anchor([REVOKED.certificate]),
        ConsumerSettings(gap_grace_seconds=GRACE_SECONDS),
        clock=rig.clock,
    )
    forged = checkpoint_entry(delivered, 1, 4, credentials=REVOKED)
    assert_rejected_and_harmless(rig, consumer, delivered, forged)


# -- 4. concurrent re-checks and the sharded open index --------------------------------------


def test_a_stale_recheck_never_writes_a_gap_over_a_complete_range(
    rig: Rig, delivered: Delivered, local_aws: LocalAws
) -> None:
    """Two invocations re-check one range: one read it (and its records) before the last
    record arrived, the other closes it complete; the stale verdict must not land."""
    journal = delivered.journal_id
    rig.send(records_except(delivered, RECORDS))
    rig.send_entries([checkpoint_entry(delivered, 1, RECORDS)])
    rig.drain()
    stale = rig.checkpoint(journal, 1)
    assert stale["state"] == "open"
    rig.send([delivered.records[-1]])
    rig.drain()
    assert rig.checkpoint(journal, 1)["state"] == "complete"
    rig.raised()

    # the stale invocation saw the records without the last one
    key = to_item({"journal_id": journal, "seq": RECORDS})
    local_aws.client("dynamodb").delete_item(TableName=rig.store.tables.records, Key=key)
    rig.clock.now += GRACE_SECONDS
    assert rig.consumer._ranges.settle(stale) is False

    settled = rig.checkpoint(journal, 1)
    assert (settled["state"], settled["missing"]) == ("complete", [])
    assert "open" not in settled
    assert rig.raised() == []
    assert stored(rig, "gap") == []


def test_open_checkpoints_are_spread_over_shards_and_all_rechecked(
    rig: Rig, delivered: Delivered
) -> None:
    journals = [f"journal-{n}" for n in range(12)]
    entries = [checkpoint_entry(delivered, 1, 4, journal_id=j) for j in journals]
    for body in deliver(rig.events, rig.sqs, entries):
        assert rig.consumer.process(parse_message(body)) is Outcome.NEW
    marks = {item["open"] for item in rig.items("checkpoints")}
    assert len(marks) > 1
    assert all(mark.startswith("open#") for mark in marks)
    keys = rig.store.open_checkpoints(len(journals))
    assert sorted(k["journal_id"] for k in keys) == sorted(journals)


# -- 5. the published watermark, 6. the proven-range hook ------------------------------------


def test_the_watermark_advances_through_ranges_already_settled_once_the_first_completes(
    rig: Rig, delivered: Delivered
) -> None:
    journal = delivered.journal_id
    rig.send(delivered.records[4:])
    rig.send_entries(
        [
            checkpoint_entry(delivered, 9, RECORDS),
            checkpoint_entry(delivered, 5, 8),
            checkpoint_entry(delivered, 1, 4),
        ]
    )
    rig.drain()
    assert rig.checkpoint(journal, 5)["state"] == rig.checkpoint(journal, 9)["state"] == "complete"
    assert proven(rig, journal) == (0, GENESIS)

    rig.send(delivered.records[:4])
    rig.drain()
    item = watermark(rig, journal)
    assert item is not None
    assert (item["proven_seq"], item["proven_chain"]) == (RECORDS, delivered.chains[-1])
    assert item["updated_at"] == int(rig.clock.now)
    assert (item["store_id"], item["terminal_id"]) == (STORE_ID, TERMINAL_ID)
    assert rig.raised() == []


def test_a_range_proven_is_reported_once_to_the_hook(
    rig: Rig, delivered: Delivered, events_client: Any
) -> None:
    journal = delivered.journal_id
    rig.send(records_except(delivered, 3, 10))
    rig.send_entries([checkpoint_entry(delivered, 1, 6), checkpoint_entry(delivered, 7, RECORDS)])
    rig.drain()
    for seq in (3, 10):
        rig.consumer.process(parse_message(delivered.records[seq - 1]))  # no re-check of its own

    reported: list[tuple[str, int, int]] = []
    alarms = Alarms(rig.store, AlarmBus(events_client, rig.alarms.bus_name))
    settings = ContinuitySettings(GRACE_SECONDS, SILENCE, 0)
    ranges = [
        Ranges(
            rig.store,
            alarms,
            GRACE_SECONDS,
            25,
            rig.clock,
            Continuity(rig.store, alarms, settings, rig.clock),
            on_range_proven=lambda *proven: reported.append(proven),
        )
        for _ in range(2)
    ]
    opened = [rig.checkpoint(journal, 1), rig.checkpoint(journal, 7)]
    assert [ranges[0].settle(item) for item in opened] == [True, True]
    assert [ranges[1].settle(item) for item in opened] == [False, False]  # a concurrent one
    assert ranges[0].recheck_open() == ranges[1].recheck_open() == 0
    assert sorted(reported) == [(journal, 1, 6), (journal, 7, RECORDS)]
    assert proven(rig, journal) == (RECORDS, delivered.chains[-1])
