"""The API's front against slow and hostile local clients, over the real Unix socket.

Idle connections, slowloris request heads and long flushes must not take the lane's API away:
payments, cancel and status still answer, and an oversized body is refused before any of it
is written to disk.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from bench.hostile_clients import hostile_clients
from drivers.card.simulator import CardReaderSimulator
from posd.api_client import DaemonClient
from posd.daemon.guard import REQUEST_DEADLINE_S
from posd.daemon.requests import MAX_BODY_BYTES
from tests.posd.daemon.conftest import DaemonFactory
from tests.posd.daemon.harness import Daemon, wait_for
from tests.posd.daemon.test_api_daemon import in_progress, in_thread
from tests.sync.faultproxy import FaultProxy

IDLE, SLOWLORIS, FLUSHES = 100, 100, 20
# Generous on a shared CI box: the 1 s p99 comes from bench/api_front.py, not from here.
ANSWER_BOUND_S = 5.0
OVERSIZED_BYTES = 8 * 1024 * 1024
SENT_BEFORE_ANSWER = 1024 * 1024
SPOOL_SETTLE_S = 0.5
# A register's answer waits no longer than this here: a front that lost the API fails fast.
CLIENT_TIMEOUT_S = 30.0


def timed_call(daemon: Daemon, method: str, path: str, body: object = None):
    started = time.monotonic()
    reply = DaemonClient(daemon.socket, CLIENT_TIMEOUT_S).exchange(method, path, body)
    return reply.status, reply.body, time.monotonic() - started


def test_register_answers_while_slow_clients_and_flushes_are_held(
    make_daemon: DaemonFactory, own_reader: CardReaderSimulator, own_proxy: FaultProxy
) -> None:
    daemon = make_daemon()
    own_proxy.down()  # nothing can be delivered: every flush waits its whole timeout
    assert daemon.pay("front-pending")[0] == 201
    with hostile_clients(daemon.socket, IDLE, SLOWLORIS, FLUSHES) as held:
        time.sleep(1.0)  # the flushes are in the daemon's hands
        status, answer, took = timed_call(daemon, "GET", "/v1/status")
        assert status == 200 and answer["pending"]["count"] >= 1
        assert took < ANSWER_BOUND_S, f"status took {took:.1f} s"
        body = {"client_ref": "front-pay-1", "amount_minor": 1234, "currency": "EUR"}
        status, paid, took = timed_call(daemon, "POST", "/v1/payments", {**body, "method": "card"})
        assert status == 201, paid
        assert took < ANSWER_BOUND_S, f"the payment took {took:.1f} s"
        own_reader.hold_cards()
        waiting, result = in_thread(daemon.pay, "front-cancel-1", timeout_s=60)
        wait_for(lambda: in_progress(daemon, "front-cancel-1"), ANSWER_BOUND_S)
        status, cancelled, took = timed_call(daemon, "POST", "/v1/payments/front-cancel-1/cancel")
        assert (status, cancelled["state"]) == (200, "cancelled")
        assert took < ANSWER_BOUND_S, f"cancel took {took:.1f} s"
        waiting.join(ANSWER_BOUND_S)
        assert result[0][0] == 422
        own_reader.hold_cards(False)
        assert len(held.all()) > 0
        assert daemon.stop() == 0  # with the flushes still in the daemon's hands
    log = (daemon.dir / "daemon.log").read_text()
    assert "Traceback" not in log and '"level": "error"' not in log


def _spooled_files(pid: int, tmpdir: Path) -> list[str]:
    """The daemon's open files under `tmpdir` (a spooled body is unlinked at once: only its
    descriptor shows it)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(tmpdir)):
            found.append(target)
    return found


def test_an_oversized_body_is_refused_before_any_spooling(
    make_daemon: DaemonFactory, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    daemon = make_daemon(start=False)
    daemon.extra_env = {"TMPDIR": str(spool)}
    daemon.start()
    assert daemon.proc is not None
    head = (
        "POST /v1/payments HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {OVERSIZED_BYTES}\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(ANSWER_BOUND_S)
        sock.connect(str(daemon.socket))
        sock.sendall(head)
        chunk = b"7" * MAX_BODY_BYTES
        sent = 0
        try:
            while sent < SENT_BEFORE_ANSWER:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the daemon refused and closed before the whole body: what we want
        time.sleep(SPOOL_SETTLE_S)
        assert _spooled_files(daemon.proc.pid, spool) == []
        assert list(spool.iterdir()) == []
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert b'"validation_error"' in answer
    assert daemon.stop() == 0


RETRIES = 6


def test_joining_retries_do_not_take_the_register_workers(
    make_daemon: DaemonFactory, own_reader: CardReaderSimulator
) -> None:
    """A register retrying the payment in hand again and again: a few retries wait for its
    answer, the others are told `in_progress` at once, and the lane still answers others."""
    daemon = make_daemon()
    own_reader.hold_cards()
    first, first_result = in_thread(daemon.pay, "front-join-1", timeout_s=30)
    wait_for(lambda: in_progress(daemon, "front-join-1"), ANSWER_BOUND_S)
    retries = [in_thread(daemon.pay, "front-join-1", timeout_s=30) for _ in range(RETRIES)]
    time.sleep(SPOOL_SETTLE_S)
    body = {"client_ref": "front-join-other", "amount_minor": 5, "currency": "EUR"}
    status, busy, took = timed_call(daemon, "POST", "/v1/payments", {**body, "method": "card"})
    assert (status, busy["error"]) == (409, "lane_busy")
    assert took < ANSWER_BOUND_S, f"lane_busy took {took:.1f} s"
    status, cancelled, took = timed_call(daemon, "POST", "/v1/payments/front-join-1/cancel")
    assert (status, cancelled["state"]) == (200, "cancelled")
    for thread, _ in [(first, first_result), *retries]:
        thread.join(ANSWER_BOUND_S)
    answers = [result[0] for _, result in retries]
    assert first_result[0][0] == 422
    assert all(
        answer == first_result[0] or answer[1]["error"] == "in_progress" for answer in answers
    )
    assert any(answer[1]["error"] == "in_progress" for answer in answers)
    own_reader.hold_cards(False)
    assert daemon.stop() == 0


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(0)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_idle_and_slowloris_connections_are_closed_within_the_request_deadline(
    shared_daemon: Daemon,
) -> None:
    """Not only an idle timeout that any byte resets: a whole request within the deadline."""
    with hostile_clients(shared_daemon.socket, 1, 1, 0, drip_s=0.5) as held:
        wait_for(
            lambda: all(_closed_by_peer(sock) for sock in held.all()),
            REQUEST_DEADLINE_S + ANSWER_BOUND_S,
        )
