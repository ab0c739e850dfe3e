"""Odd input over the real socket: every refusal a 400 with its code, never a 500, never an
echo of card data; and answers that say the payment's current state (issue 20)."""

from __future__ import annotations

from typing import Any

from drivers.card.simulator import CardReaderSimulator
from tests.cards import VISA_TEST_PAN
from tests.posd.daemon.conftest import DaemonFactory
from tests.posd.daemon.harness import Daemon, wait_for
from tests.posd.daemon.test_api_daemon import in_progress, in_thread

HUGE_INTEGER = "9" * 5_000  # past Python's 4,300-digit int-parsing limit


def payment_body(**fields: Any) -> dict[str, Any]:
    return {
        "client_ref": "strict-1",
        "amount_minor": 100,
        "currency": "EUR",
        "method": "card",
        **fields,
    }


def test_huge_numbers_are_a_validation_error_not_a_500(shared_daemon: Daemon) -> None:
    for literal in (HUGE_INTEGER, "1" + "0" * 400 + ".5", "1e" + "9" * 500, "NaN", "-Infinity"):
        raw = b'{"client_ref": "strict-n", "amount_minor": ' + literal.encode() + b"}"
        status, body = shared_daemon.call("POST", "/v1/payments", raw=raw)
        assert (status, body["error"]) == (400, "validation_error"), literal[:20]
        raw = b'{"timeout_s": ' + literal.encode() + b"}"
        status, body = shared_daemon.call("POST", "/v1/sync/flush", raw=raw)
        assert (status, body["error"]) == (400, "validation_error"), literal[:20]


def test_duplicate_keys_are_refused(shared_daemon: Daemon) -> None:
    raw = (
        b'{"client_ref": "strict-d", "amount_minor": 5, "amount_minor": 900000,'
        b' "currency": "EUR", "method": "card"}'
    )
    status, body = shared_daemon.call("POST", "/v1/payments", raw=raw)
    assert (status, body["error"]) == (400, "validation_error")
    assert shared_daemon.call("GET", "/v1/payments/strict-d")[0] == 404


def test_currencies_outside_iso_4217_or_the_lane_are_refused(shared_daemon: Daemon) -> None:
    for code in ("XXX", "EUX", "XTS"):
        status, body = shared_daemon.call("POST", "/v1/payments", payment_body(currency=code))
        assert (status, body["error"]) == (400, "unknown_currency"), code
    status, body = shared_daemon.call("POST", "/v1/payments", payment_body(currency="JPY"))
    assert (status, body["error"]) == (422, "currency_not_accepted")


def test_a_pan_shaped_client_ref_is_refused_and_never_echoed(shared_daemon: Daemon) -> None:
    status, body = shared_daemon.call(
        "POST", "/v1/payments", payment_body(client_ref=VISA_TEST_PAN)
    )
    assert (status, body["error"]) == (400, "card_number_in_client_ref")
    assert VISA_TEST_PAN not in str(body)
    status, body = shared_daemon.call("GET", f"/v1/payments/{VISA_TEST_PAN}")
    assert (status, body["error"]) == (400, "card_number_in_client_ref")
    assert VISA_TEST_PAN not in str(body)


def test_unknown_field_names_are_not_echoed_in_clear(shared_daemon: Daemon) -> None:
    status, body = shared_daemon.call(
        "POST", "/v1/payments", payment_body(**{VISA_TEST_PAN: 1, "x" * 5000: 1})
    )
    assert (status, body["error"]) == (400, "validation_error")
    assert VISA_TEST_PAN not in str(body) and "x" * 200 not in str(body)
    assert VISA_TEST_PAN not in shared_daemon.output()


def test_a_post_replayed_after_a_void_answers_voided(
    shared_daemon: Daemon, reader: CardReaderSimulator
) -> None:
    assert shared_daemon.pay("strict-void-1", 300)[0] == 201
    status, void = shared_daemon.call("POST", "/v1/payments/strict-void-1/void")
    assert status == 201
    status, replay = shared_daemon.pay("strict-void-1", 300)
    assert status == 201 and replay["state"] == "voided"
    assert replay["void_event_id"] == void["event_id"]
    assert replay == shared_daemon.call("GET", "/v1/payments/strict-void-1")[1]


def test_status_names_the_client_ref_in_flight(
    shared_daemon: Daemon, reader: CardReaderSimulator
) -> None:
    assert shared_daemon.call("GET", "/v1/status")[1]["in_flight"] is None
    reader.hold_cards()
    thread, _ = in_thread(shared_daemon.pay, "strict-flight-1", timeout_s=10)
    wait_for(lambda: in_progress(shared_daemon, "strict-flight-1"), 5)
    status = shared_daemon.call("GET", "/v1/status")[1]
    assert status["in_flight"] == {
        "client_ref": "strict-flight-1",
        "method": "card",
        "amount_minor": 1234,
        "currency": "EUR",
    }
    shared_daemon.call("POST", "/v1/payments/strict-flight-1/cancel")
    thread.join(15)
    assert shared_daemon.call("GET", "/v1/status")[1]["in_flight"] is None


def test_status_is_not_ready_while_payments_are_refused_for_space(
    make_daemon: DaemonFactory,
) -> None:
    daemon = make_daemon(journal={"min_free_bytes": 2**62})
    status, body = daemon.pay("strict-space-1")
    assert (status, body["error"]) == (507, "disk_below_reserve")
    status = daemon.call("GET", "/v1/status")[1]
    assert status["state"] == "not_ready" and "disk reserve" in status["not_ready_reason"]
    assert status["refusing"]["error"] == "disk_below_reserve"
