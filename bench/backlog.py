"""A journal with a backlog of card payments to deliver: what the delivery benchmarks drain."""

from __future__ import annotations

import json
from pathlib import Path

from drivers.card.deck import TEST_PANS
from posd.journal import Journal
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder

TEST_PAN = TEST_PANS[0][1]  # the simulator deck's first public test card number
KEY_FILE = "bench-kek.b64"
PAYMENT_KIND = "payment.card"
PAYMENT_META = {"amount": 1250, "currency": "EUR", "bin": TEST_PAN[:6], "last4": TEST_PAN[-4:]}
PAYMENT_SECRET = json.dumps({"pan": TEST_PAN, "expiry": "2912"}).encode()


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
            journal._conn.execute("PRAGMA synchronous=OFF")  # bench only: see the docstring
        keys.wait_ready(10)
        recorder = Recorder(journal, keys, store_id, terminal_id)
        for _ in range(records):
            recorder.record(PAYMENT_KIND, PAYMENT_META, PAYMENT_SECRET)
