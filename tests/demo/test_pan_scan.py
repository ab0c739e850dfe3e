"""The demo's PAN scanner finds a card number planted in a child process's memory and in a
file, and counts nothing where there is none."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demo.pan_scan import CHUNK_BYTES, Counter, PanScanError, scan_files, scan_process
from drivers.card.deck import TEST_PANS

PANS = [pan for _, pan in TEST_PANS]
PLANTED = PANS[0]
# The child gets the number reversed and turns it around in its heap: the forward digits are
# then in its memory only because it built them (not in its argv, nor in a pipe buffer).
HOLDER = (
    "import sys, time\n"
    "held = [sys.stdin.readline().strip()[::-1]]\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
IDLE = "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"


def child(code: str, stdin: str = "") -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(stdin + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "ready"
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def holder() -> Iterator[int]:
    yield from child(HOLDER, PLANTED[::-1])


@pytest.fixture
def idle() -> Iterator[int]:
    yield from child(IDLE)


def test_finds_a_pan_planted_in_a_child_process(holder: int) -> None:
    assert scan_process(holder, [PLANTED]) >= 1


def test_finds_nothing_in_a_process_that_never_held_one(idle: int) -> None:
    assert scan_process(idle, PANS) == 0


def test_a_process_that_cannot_be_read_is_an_error() -> None:
    with pytest.raises(PanScanError):
        scan_process(2**22 + 12345, PANS)  # above the default pid_max: no such process


def test_files(tmp_path: Path) -> None:
    clean, dirty = tmp_path / "clean.log", tmp_path / "dirty.log"
    clean.write_bytes(b"x" * CHUNK_BYTES + b"411111******1111\n")
    # the number straddles a chunk boundary
    dirty.write_bytes(b"x" * (CHUNK_BYTES - 5) + PLANTED.encode() + b"\n")
    assert scan_files([clean, tmp_path / "missing"], PANS) == 0
    assert scan_files([clean, dirty], PANS) == 1


@given(
    st.binary(max_size=64),
    st.binary(max_size=64),
    st.integers(min_value=1, max_value=40),
)
def test_counter_counts_each_hit_once_whatever_the_chunking(
    before: bytes, after: bytes, size: int
) -> None:
    needle = PLANTED.encode()
    data = before + needle + after + needle
    counter = Counter([needle])
    for start in range(0, len(data), size):
        counter.feed(data[start : start + size])
    assert counter.total == data.count(needle)
