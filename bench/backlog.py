"""A journal with a backlog of card payments to deliver: what the delivery benchmarks drain."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from drivers.card.deck import TEST_PANS
from posd.journal import Journal
from posd.journal.schema import SCHEMA_VERSION
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from sync.outbox import Delivered

TEST_PAN = TEST_PANS[0][1]  # the simulator deck's first public test card number
KEY_FILE = "bench-kek.b64"
PAYMENT_KIND = "payment.card"
PAYMENT_META = {"amount": 1250, "currency": "EUR", "bin": TEST_PAN[:6], "last4": TEST_PAN[-4:]}
PAYMENT_SECRET = json.dumps({"pan": TEST_PAN, "expiry": "2912"}).encode()
CACHE = Path(__file__).resolve().parent / "results" / "journals"  # gitignored
MARK_CHUNK = 50_000


def fill_backlog(
    state_dir: Path, records: int, store_id: str, terminal_id: str, *, durable: bool = True
) -> None:
    """Append `records` sealed card payments (local development key) to the journal there.

    Every record goes through the real capture path (`Recorder`: data key, AES-GCM seal, hash
    chain, the journal's own INSERT). `durable=False` only skips the fsync of each commit
    (`PRAGMA synchronous=OFF` on this connection), so a million-record journal is built in
    about a minute instead of an hour; the file it leaves is the same.
    """
    with (
        Journal.open(state_dir) as journal,
        RotatingKeyProvider(LocalKeySource(state_dir / KEY_FILE, create=True)) as keys,
    ):
        if not durable:
            journal.inspection.writer.execute(
                "PRAGMA synchronous=OFF"
            )  # bench only: see the docstring
        keys.wait_ready(10)
        recorder = Recorder(journal, keys, store_id, terminal_id)
        for _ in range(records):
            recorder.record(PAYMENT_KIND, PAYMENT_META, PAYMENT_SECRET)


def history_journal(
    size: int, backlog: int, store_id: str, terminal_id: str
) -> tuple[Path, float | None]:
    """A journal of `size` card payments, all delivered but the last `backlog` (a busy lane's
    day, within retention), built once (`fill_backlog` without fsync, then marked delivered
    through `Journal.mark_delivered`) and cached in `CACHE`. Returns (its state dir, seconds
    it took to build now, None if it was cached). Copy it (`copy_journal`) before use."""
    where = CACHE / f"v{SCHEMA_VERSION}-{size}-{backlog}"
    if (where / "complete").is_file():
        return where, None
    shutil.rmtree(where, ignore_errors=True)
    started = time.perf_counter()
    fill_backlog(where, size, store_id, terminal_id, durable=False)
    with Journal.open(where) as journal:
        journal.inspection.writer.execute("PRAGMA synchronous=OFF")  # bench only, as fill_backlog
        now = time.time()
        for first in range(1, size - backlog + 1, MARK_CHUNK):
            last = min(first + MARK_CHUNK, size - backlog + 1)
            journal.mark_delivered(
                [Delivered(seq, f"bench-{seq}") for seq in range(first, last)], now
            )
    (where / "complete").touch()
    return where, time.perf_counter() - started


def copy_journal(source: Path, state_dir: Path) -> None:
    """Copy a cached state dir and fsync the copy: otherwise the first fsync measured (a WAL
    checkpoint's) pays for writing back the whole copy, hundreds of MB at a million records."""
    shutil.copytree(source, state_dir)
    for path in state_dir.iterdir():
        with path.open("rb") as copied:
            os.fsync(copied.fileno())
