"""Fixtures for the driver tests: a pty simulator, a serial reader on it, safe assertions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.card.link import LinkTiming
from drivers.card.serial_reader import SerialCardReader
from drivers.card.simulator import CardReaderSimulator

# Short timeouts keep the fault tests fast; each stays well above pty latency.
ACK_TIMEOUT_S = 0.15
INTER_BYTE_TIMEOUT_S = 0.05
RESPONSE_TIMEOUT_S = 0.6
BACKOFF_INITIAL_S = 0.02
BACKOFF_MAX_S = 0.2
WAIT_LIMIT_S = 5.0  # upper bound for any polling wait in a test

FAST_TIMING = LinkTiming(ack_timeout_s=ACK_TIMEOUT_S, inter_byte_timeout_s=INTER_BYTE_TIMEOUT_S)
READER_OPTIONS: dict[str, Any] = {
    "response_timeout_s": RESPONSE_TIMEOUT_S,
    "ack_timeout_s": ACK_TIMEOUT_S,
    "inter_byte_timeout_s": INTER_BYTE_TIMEOUT_S,
    "backoff_initial_s": BACKOFF_INITIAL_S,
    "backoff_max_s": BACKOFF_MAX_S,
}


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_LIMIT_S) -> None:
    """Poll `predicate` until true; fail the test (never hang) after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.005)


def assert_no_secret(text: str, secret: str) -> None:
    """Fail without quoting either string (the failure message must not leak the secret)."""
    if secret in text:
        pytest.fail("full card data found in output")


@pytest.fixture
def sim() -> Iterator[CardReaderSimulator]:
    with CardReaderSimulator(timing=FAST_TIMING) as simulator:
        yield simulator


@pytest.fixture
def reader(sim: CardReaderSimulator) -> Iterator[SerialCardReader]:
    with SerialCardReader(sim.port, **READER_OPTIONS) as card_reader:
        yield card_reader
