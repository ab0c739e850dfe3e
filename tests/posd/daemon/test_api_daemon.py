"""The register's API over the real Unix socket of one shared `posd run` subprocess."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from typing import Any

import pytest

from cloud.tables import TableNames
from demo.localaws.emulator import LocalAws
from drivers.card.simulator import CardReaderSimulator
from posd.cli.main import main
from tests.cards import TEST_PANS
from tests.posd.daemon.harness import Daemon, wait_for
from wire.watermark import JOURNAL_ID, LANE_ID, PROVEN_CHAIN, PROVEN_SEQ, UPDATED_AT, lane_id


def in_thread(function: Any, *args: Any, **kwargs: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(function(*args, **kwargs)))
    thread.start()
    return thread, result


def in_progress(daemon: Daemon, ref: str) -> bool:
    status, body = daemon.call("GET", f"/v1/payments/{ref}")
    return status == 200 and body["state"] == "in_progress"


def no_card_data(text: str) -> bool:
    return not any(pan in text for pan in TEST_PANS)


def test_notify_ready_status_and_watchdog(shared_daemon: Daemon) -> None:
    ready = shared_daemon.wait_note("READY=1", 1)
    assert any(line.startswith("STATUS=link ") for line in ready.splitlines())
    assert "card_reader ok" in ready and "palm_scanner ok" in ready
    shared_daemon.wait_note("WATCHDOG=1", 5)


def test_socket_is_0660_and_owned_by_the_group(shared_daemon: Daemon) -> None:
    info = os.stat(shared_daemon.socket)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert info.st_gid == os.getgid()


def test_card_payment_then_retry_returns_the_first_answer(
    shared_daemon: Daemon, reader: CardReaderSimulator
) -> None:
    status, first = shared_daemon.pay("api-card-1", 4321)
    assert status == 201, first
    assert first["state"] == "captured" and first["method"] == "card"
    assert first["client_ref"] == "api-card-1" and first["amount_minor"] == 4321
    assert first["masked_pan"].count("*") >= 4 and first["brand"] != "unknown"
    assert first["key_source"] == "local" and first["offline"] is False
    assert no_card_data(str(first))
    presented = len(reader.presented)
    assert shared_daemon.pay("api-card-1", 4321, timeout_s=3) == (201, first)
    assert len(reader.presented) == presented  # the retry never armed the reader
    status, clash = shared_daemon.pay("api-card-1", 4322)
    assert (status, clash["error"]) == (409, "idempotency_mismatch")


def test_palm_and_card_or_palm(shared_daemon: Daemon, reader: CardReaderSimulator) -> None:
    status, palm = shared_daemon.pay("api-palm-1", method="palm")
    assert status == 201 and palm["entry_mode"] == "palm" and palm["brand"] is None
    reader.hold_cards()  # no card: the palm wins the race, the reader is cancelled
    status, either = shared_daemon.pay("api-either-1", method="card+palm", timeout_s=5)
    assert status == 201 and either["entry_mode"] == "palm" and either["method"] == "card+palm"
    assert not reader.armed


def test_a_retry_joins_the_attempt_in_hand_and_others_are_lane_busy(
    shared_daemon: Daemon, reader: CardReaderSimulator
) -> None:
    reader.hold_cards()
    first, first_result = in_thread(shared_daemon.pay, "api-join-1", timeout_s=10)
    wait_for(lambda: in_progress(shared_daemon, "api-join-1"), 5)
    retry, retry_result = in_thread(shared_daemon.pay, "api-join-1", timeout_s=10)
    status, busy = shared_daemon.pay("api-join-other")
    assert (status, busy["error"]) == (409, "lane_busy")
    status, clash = shared_daemon.pay("api-join-1", 99)
    assert (status, clash["error"]) == (409, "idempotency_mismatch")
    reader.hold_cards(False)
    first.join(15)
    retry.join(15)
    assert first_result[0][0] == 201
    assert retry_result == first_result


def test_cancel_stops_a_waiting_read(shared_daemon: Daemon, reader: CardReaderSimulator) -> None:
    reader.hold_cards()
    waiting, result = in_thread(shared_daemon.pay, "api-cancel-1", timeout_s=20)
    wait_for(lambda: in_progress(shared_daemon, "api-cancel-1"), 5)
    status, cancelled = shared_daemon.call("POST", "/v1/payments/api-cancel-1/cancel")
    assert (status, cancelled["state"]) == (200, "cancelled")
    waiting.join(10)
    assert result[0][0] == 422 and result[0][1]["error"] == "cancelled"
    status, looked_up = shared_daemon.call("GET", "/v1/payments/api-cancel-1")
    assert (looked_up["state"], looked_up["error"]) == ("refused", "cancelled")
    assert shared_daemon.call("POST", "/v1/payments/api-never/cancel")[0] == 404


def test_no_card_in_time_is_read_timeout(
    shared_daemon: Daemon, reader: CardReaderSimulator
) -> None:
    reader.hold_cards()
    status, body = shared_daemon.pay("api-timeout-1", timeout_s=0.3)
    assert (status, body["error"]) == (422, "read_timeout")


def test_void_is_journaled_once_and_references_the_payment(shared_daemon: Daemon) -> None:
    status, paid = shared_daemon.pay("api-void-1", 700)
    assert status == 201
    status, void = shared_daemon.call("POST", "/v1/payments/api-void-1/void")
    assert status == 201 and void["voids_event_id"] == paid["event_id"]
    assert void["event_id"] != paid["event_id"] and void["seq"] > paid["seq"]
    assert shared_daemon.call("POST", "/v1/payments/api-void-1/void") == (200, void)
    status, looked_up = shared_daemon.call("GET", "/v1/payments/api-void-1")
    assert looked_up["state"] == "voided" and looked_up["void_event_id"] == void["event_id"]
    assert shared_daemon.call("POST", "/v1/payments/api-unknown/void")[0] == 404


def test_bad_requests_are_refused_with_codes_never_500(shared_daemon: Daemon) -> None:
    status, body = shared_daemon.call(
        "POST", "/v1/payments", {"client_ref": "x y", "amount_minor": -1, "method": "cash"}
    )
    assert (status, body["error"]) == (400, "validation_error")
    assert {"client_ref", "amount_minor", "currency", "method"} <= set(body["fields"])
    for raw in (b"{", b"[]", b"\xff\xfe", b'{"client_ref": "a", "extra": 1}', b"1e999999"):
        status, body = shared_daemon.call("POST", "/v1/payments", raw=raw)
        assert (status, body["error"]) == (400, "validation_error"), raw
    assert shared_daemon.call("GET", "/v1/nothing-here")[1]["error"] == "not_found"
    assert shared_daemon.call("DELETE", "/v1/status")[1]["error"] == "method_not_allowed"
    status, body = shared_daemon.call("GET", "/v1/payments/bad%20ref")
    assert (status, body["error"]) == (400, "validation_error")


def test_status_devices_and_metrics(shared_daemon: Daemon) -> None:
    assert shared_daemon.pay("api-metrics-1")[0] == 201
    status, body = shared_daemon.call("GET", "/v1/status")
    assert status == 200
    assert body["terminal"]["terminal_id"] == "lane-09"
    assert body["pending"]["count"] >= 0 and body["key_source"] == "local"
    assert body["devices"] == {"card_reader": "connected", "palm_scanner": "connected"}
    assert set(body["limits"]) == {
        "max_payment_amount",
        "max_pending_amount",
        "max_pending_count",
        "max_pending_age_seconds",
    }
    status, devices = shared_daemon.call("GET", "/v1/devices")
    names = {device["name"]: device for device in devices["devices"]}
    assert names["card_reader"]["model"] == "POSD-SIM-1" and names["card_reader"]["connected"]
    status, text = shared_daemon.call("GET", "/metrics")
    assert status == 200
    for metric in (
        'posd_captures_total{brand="visa",method="card"}',
        "posd_capture_seconds_count",
        "posd_pending_records",
        "posd_oldest_pending_age_seconds",
        'posd_device_connected{device="card_reader"} 1.0',
        "posd_link_online",
        "posd_journal_bytes",
        'posd_delivery_results_total{code="delivered"}',
        'posd_refusals_total{code="validation_error"}',
        'posd_append_lock_wait_seconds_bucket{le="0.001"}',
        "posd_append_lock_wait_seconds_count",
        "posd_append_lock_wait_max_seconds",
    ):
        assert metric in text, metric
    assert no_card_data(text)
    status, flushed = shared_daemon.call("POST", "/v1/sync/flush", {"timeout_s": 10})
    assert status == 200 and flushed["completed"] and flushed["pending"] == 0


def test_status_shows_the_proven_watermark(
    shared_daemon: Daemon,
    module_tables: TableNames,
    local_aws: LocalAws,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`acknowledged` in `GET /v1/status` (over the socket) and in `posd status`: the read's
    error until the cloud publishes a watermark for this journal, then the watermark."""

    def acknowledged() -> dict[str, Any]:
        status, body = shared_daemon.call("GET", "/v1/status")
        assert status == 200
        return dict(body["acknowledged"])

    unproven = wait_for(lambda: (a := acknowledged())["checked_at"] and a, 10)
    assert unproven["proven_seq"] is None
    assert "no proven watermark yet" in unproven["error"]
    journal_id = unproven["journal_id"]
    assert journal_id
    local_aws.client("dynamodb").put_item(
        TableName=module_tables.watermarks,
        Item={
            LANE_ID: {"S": lane_id("store-daemon", "lane-09")},
            JOURNAL_ID: {"S": journal_id},
            PROVEN_SEQ: {"N": "1"},
            PROVEN_CHAIN: {"S": "00" * 32},
            UPDATED_AT: {"N": str(int(time.time()))},
        },
    )
    proven = wait_for(lambda: (a := acknowledged())["proven_seq"] == 1 and a, 10)
    assert proven["journal_id"] == journal_id and proven["error"] is None

    assert main(["status", "--config", str(shared_daemon.config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["acknowledged"]
    assert (shown["journal_id"], shown["proven_seq"], shown["error"]) == (journal_id, 1, None)
    assert main(["status", "--config", str(shared_daemon.config)]) == 0
    human = capsys.readouterr().out
    assert re.search(r"acknowledged:\s+proven through seq 1, checked 20", human), human


def test_an_unplugged_reader_degrades_the_lane_until_it_is_back(
    shared_daemon: Daemon, reader: CardReaderSimulator
) -> None:
    reader.unplug()

    def card_reader() -> dict[str, Any]:
        devices = shared_daemon.call("GET", "/v1/devices")[1]["devices"]
        return next(d for d in devices if d["name"] == "card_reader")

    wait_for(lambda: not card_reader()["connected"], 10)
    assert shared_daemon.call("GET", "/v1/status")[1]["state"] == "degraded"
    status, body = shared_daemon.pay("api-unplugged-1")
    assert (status, body["error"]) == (503, "device_unavailable")
    assert (
        'posd_device_connected{device="card_reader"} 0.0'
        in shared_daemon.call("GET", "/metrics")[1]
    )
    reader.replug()
    wait_for(lambda: card_reader()["connected"], 10)
    assert card_reader()["reconnects"] >= 1
    assert shared_daemon.pay("api-unplugged-1")[0] == 201
