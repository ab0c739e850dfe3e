"""Acknowledged retention: the engine erases a delivered record only once the cloud has proven
it (its seq at or below the journal's proven watermark, read from the consumer's own
`watermarks` table in moto's DynamoDB over HTTP), or once `max_unacknowledged_seconds` have
passed since its delivery. A failed read never stops delivery, and never moves the watermark
back."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog

from cloud.tables import TableNames, create_tables
from demo.localaws.emulator import LocalAws
from posd.journal import Journal
from posd.journal.outcomes import OUTCOME_JOIN, STATE
from posd.recorder import Recorder
from sync.engine import SyncEngine
from sync.watermarks import WatermarkTable, make_watermark_client
from tests.conftest import query_file
from tests.sync.conftest import (
    FAST,
    STORE_ID,
    TERMINAL_ID,
    WAIT_SECONDS,
    EngineFactory,
    emulator_session,
    fill,
    wait_for,
)
from tests.sync.faultproxy import FaultProxy
from wire.watermark import JOURNAL_ID, LANE_ID, PROVEN_CHAIN, PROVEN_SEQ, UPDATED_AT, lane_id

ROUND_SECONDS = 0.05  # purge and watermark poll interval of these engines
QUIET_SECONDS = 0.5  # ten purges and reads: long enough for one that should not happen
ZERO_CHAIN = "00" * 32


@pytest.fixture(scope="module")
def tables(local_aws: LocalAws) -> TableNames:
    """The consumer's tables, as the consumer defines them (cloud/tables.py)."""
    names = TableNames.prefixed(f"ack-{uuid.uuid4().hex[:8]}")
    create_tables(local_aws.client("dynamodb"), names)
    return names


@pytest.fixture
def dynamodb(local_aws: LocalAws) -> Any:
    return local_aws.client("dynamodb")


def publish(dynamodb: Any, tables: TableNames, journal_id: str, seq: int) -> None:
    """Write the watermark item as the consumer does (wire/watermark.py)."""
    dynamodb.put_item(
        TableName=tables.watermarks,
        Item={
            LANE_ID: {"S": lane_id(STORE_ID, TERMINAL_ID)},
            JOURNAL_ID: {"S": journal_id},
            PROVEN_SEQ: {"N": str(seq)},
            PROVEN_CHAIN: {"S": ZERO_CHAIN},
            UPDATED_AT: {"N": str(int(time.time()))},
        },
    )


def watermarks_at(endpoint: str, tables: TableNames) -> WatermarkTable:
    """The terminal's reader, with the terminal's own client (timeouts, no SDK retries)."""
    client = make_watermark_client(FAST, endpoint_url=endpoint, session=emulator_session())
    return WatermarkTable(client, tables.watermarks, lane_id(STORE_ID, TERMINAL_ID))


def acknowledged_engine(
    make_engine: EngineFactory, aws_endpoint: str, watermarks: WatermarkTable, **changes: Any
) -> SyncEngine:
    settings: dict[str, Any] = {
        "retention_seconds": 0.0,
        "purge_interval_seconds": ROUND_SECONDS,
        "watermark_poll_seconds": ROUND_SECONDS,
        "watermark_table": watermarks.table,
        **changes,
    }
    return make_engine(aws_endpoint, watermarks=watermarks, **settings)


@contextmanager
def running(engine: SyncEngine) -> Iterator[SyncEngine]:
    runner = threading.Thread(target=engine.run, daemon=True)
    runner.start()
    try:
        yield engine
    finally:
        engine.stop()
        runner.join(WAIT_SECONDS)


def reads_after(engine: SyncEngine, moment: float, count: int = 2) -> None:
    """Wait until `count` watermark reads ended after `moment` (time.time())."""
    for _ in range(count):
        wait_for(
            lambda: (engine.status().acknowledged.checked_at or 0) > moment, "a watermark read"
        )
        moment = time.time()


def kept(journal: Journal) -> list[tuple[int, str]]:
    return [
        (int(seq), str(state))
        for seq, state in query_file(
            journal, f"SELECT r.seq, {STATE} FROM records r {OUTCOME_JOIN} ORDER BY r.seq"
        )
    ]


def delivered(seqs: range) -> list[tuple[int, str]]:
    return [(seq, "delivered") for seq in seqs]


def test_nothing_goes_until_proven_then_exactly_what_is_proven(
    recorder: Recorder,
    journal: Journal,
    make_engine: EngineFactory,
    aws_endpoint: str,
    tables: TableNames,
    dynamodb: Any,
) -> None:
    fill(recorder, 5)
    engine = acknowledged_engine(make_engine, aws_endpoint, watermarks_at(aws_endpoint, tables))
    with running(engine):
        wait_for(lambda: journal.summary().delivered == 5, "delivered")
        reads_after(engine, time.time())
        time.sleep(QUIET_SECONDS)
        assert kept(journal) == delivered(range(1, 6))  # no watermark: nothing proven
        ack = engine.status().acknowledged
        assert (ack.journal_id, ack.proven_seq) == (journal.journal_id, None)
        assert ack.error is not None and "no proven watermark yet" in ack.error

        publish(dynamodb, tables, journal.journal_id, 3)
        wait_for(lambda: journal.summary().delivered == 2, "proven records purged")
        time.sleep(QUIET_SECONDS)
        assert kept(journal) == delivered(range(4, 6))
        ack = engine.status().acknowledged
        assert (ack.journal_id, ack.proven_seq, ack.error) == (journal.journal_id, 3, None)
        assert engine.status().as_dict()["acknowledged"]["proven_seq"] == 3


def test_a_watermark_of_another_journal_is_ignored(
    recorder: Recorder,
    journal: Journal,
    make_engine: EngineFactory,
    aws_endpoint: str,
    tables: TableNames,
    dynamodb: Any,
) -> None:
    fill(recorder, 3)
    publish(dynamodb, tables, f"reset-{uuid.uuid4()}", 100)  # the journal before a reset
    engine = acknowledged_engine(make_engine, aws_endpoint, watermarks_at(aws_endpoint, tables))
    with running(engine):
        wait_for(lambda: journal.summary().delivered == 3, "delivered")
        reads_after(engine, time.time())
        time.sleep(QUIET_SECONDS)
        assert kept(journal) == delivered(range(1, 4))
        assert engine.status().acknowledged.proven_seq is None


def test_a_stale_read_never_moves_the_watermark_back(
    recorder: Recorder,
    journal: Journal,
    make_engine: EngineFactory,
    aws_endpoint: str,
    tables: TableNames,
    dynamodb: Any,
) -> None:
    fill(recorder, 6)
    publish(dynamodb, tables, journal.journal_id, 4)
    engine = acknowledged_engine(make_engine, aws_endpoint, watermarks_at(aws_endpoint, tables))
    with running(engine):
        wait_for(lambda: engine.status().acknowledged.proven_seq == 4, "the watermark read")
        wait_for(lambda: kept(journal) == delivered(range(5, 7)), "proven records purged")
        publish(dynamodb, tables, journal.journal_id, 2)  # what a stale replica answers
        reads_after(engine, time.time())
        assert engine.status().acknowledged.proven_seq == 4
        assert engine.status().acknowledged.error is None


def test_unproven_records_go_after_max_unacknowledged_seconds_with_one_warning(
    recorder: Recorder,
    journal: Journal,
    make_engine: EngineFactory,
    aws_endpoint: str,
    tables: TableNames,
    dynamodb: Any,
) -> None:
    fill(recorder, 4)
    publish(dynamodb, tables, journal.journal_id, 1)
    engine = acknowledged_engine(
        make_engine,
        aws_endpoint,
        watermarks_at(aws_endpoint, tables),
        max_unacknowledged_seconds=2.0,
    )
    with structlog.testing.capture_logs() as logs, running(engine):
        wait_for(lambda: kept(journal) == delivered(range(2, 5)), "the proven record purged")
        time.sleep(QUIET_SECONDS)
        assert kept(journal) == delivered(range(2, 5))  # unproven, not yet too old
        wait_for(lambda: not kept(journal), "unproven records purged after the limit")
        time.sleep(QUIET_SECONDS)
    warnings = [log for log in logs if log["event"] == "sync.purged_unacknowledged"]
    assert len(warnings) == 1, warnings  # one line for the round, not one per record
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["records"] == 3
    assert warnings[0]["journal_id"] == journal.journal_id
    assert warnings[0]["proven_seq"] == 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_table_stops_neither_delivery_nor_keeps_anything_unproven(
    recorder: Recorder,
    journal: Journal,
    make_engine: EngineFactory,
    aws_endpoint: str,
    tables: TableNames,
) -> None:
    fill(recorder, 3)
    nowhere = watermarks_at(f"http://127.0.0.1:{closed_port()}", tables)
    engine = acknowledged_engine(make_engine, aws_endpoint, nowhere)
    with running(engine):
        wait_for(lambda: engine.status().acknowledged.error, "the failed read")
        wait_for(lambda: journal.summary().delivered == 3, "delivered all the same")
        time.sleep(QUIET_SECONDS)
        assert kept(journal) == delivered(range(1, 4))
        ack = engine.status().acknowledged
        assert ack.proven_seq is None and ack.checked_at is not None
        assert ack.error is not None and "EndpointConnectionError" in ack.error
        assert engine.status().state == "online"


def test_a_lost_table_keeps_the_last_watermark_and_delivery_goes_on(
    recorder: Recorder,
    journal: Journal,
    make_engine: EngineFactory,
    aws_endpoint: str,
    tables: TableNames,
    dynamodb: Any,
    local_aws: LocalAws,
) -> None:
    fill(recorder, 3)
    publish(dynamodb, tables, journal.journal_id, 2)
    vpn = FaultProxy(local_aws.endpoint_url)  # the DynamoDB endpoint behind the store's VPN
    engine = acknowledged_engine(make_engine, aws_endpoint, watermarks_at(vpn.url, tables))
    try:
        with structlog.testing.capture_logs() as logs, running(engine):
            wait_for(lambda: kept(journal) == delivered(range(3, 4)), "proven records purged")
            vpn.cut()
            wait_for(lambda: engine.status().acknowledged.error, "the failed read")
            publish(dynamodb, tables, journal.journal_id, 5)  # proven, but out of reach
            fill(recorder, 2)
            wait_for(lambda: journal.summary().delivered == 3, "new records delivered")
            reads_after(engine, time.time(), count=3)
            assert kept(journal) == delivered(range(3, 6))
            assert engine.status().acknowledged.proven_seq == 2
            vpn.up()
            wait_for(lambda: not kept(journal), "purged once the table is back")
            assert engine.status().acknowledged.proven_seq == 5
            assert engine.status().acknowledged.error is None
    finally:
        vpn.down()
    events = [log["event"] for log in logs]
    # Once per change of state, not once per failed read.
    assert events.count("sync.watermark_unavailable") == 1, events
    assert events.count("sync.watermark_available") == 1, events
