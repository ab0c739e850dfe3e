"""Child process for the crash tests: appends records forever, acknowledging each on stdout.

Usage: python -m tests.posd.journal.crash_appender STATE_DIR KEY_FILE [CHECKPOINT_EVERY_RECORDS]
Each line printed is `seq event_id` of a record whose append has returned (is durable).
"""

from __future__ import annotations

import sys
from pathlib import Path

from posd.journal import Journal, JournalSettings
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.logs import configure_logging
from posd.recorder import Recorder
from tests.cards import STORE_ID, TERMINAL_ID, VISA_TEST_PAN, payment_meta


def secret_for(event_index: int) -> bytes:
    return f"crash-payload-{event_index}".encode()


def main() -> None:
    configure_logging("warning")  # logs to stderr: stdout carries only the acknowledgements
    state_dir, key_file = Path(sys.argv[1]), Path(sys.argv[2])
    settings = JournalSettings()
    if len(sys.argv) > 3:
        settings = JournalSettings(checkpoint_every_records=int(sys.argv[3]))
    source = LocalKeySource(key_file)
    with (
        RotatingKeyProvider(source, source, rotate_after_records=7) as keys,
        Journal.open(state_dir, settings) as journal,
    ):
        recorder = Recorder(journal, keys, STORE_ID, TERMINAL_ID)
        index = 0
        while True:
            record = recorder.record(
                "card_payment", payment_meta(VISA_TEST_PAN), secret_for(index), client_ref=None
            )
            sys.stdout.write(f"{record.seq} {record.event_id} {index}\n")
            sys.stdout.flush()
            index += 1


if __name__ == "__main__":
    main()
