"""Child process for the crash tests: delivers as `posd sync run` does, forever, in its own
process next to an appender: leases due records, "sends" each (a line on stdout, flushed: what
the bus received), then marks them delivered.

Usage: python -m tests.posd.journal.crash_deliverer STATE_DIR [--drain]
Each line printed is `seq event_id` of a record sent. `--drain`: stop once nothing is due.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from posd.journal import Journal
from posd.logs import configure_logging
from sync.outbox import Delivered

BATCH = 10
LEASE_SECONDS = 0.5  # short: a killed deliverer's lease lapses within the test
IDLE_SECONDS = 0.01


def main() -> None:
    configure_logging("warning")  # logs to stderr: stdout carries only what was sent
    state_dir, drain = Path(sys.argv[1]), "--drain" in sys.argv[2:]
    with Journal.open(state_dir) as journal:
        while True:
            leased = journal.lease(BATCH, time.time(), LEASE_SECONDS).records
            if not leased:
                if drain:
                    return
                time.sleep(IDLE_SECONDS)
                continue
            for record in leased:
                sys.stdout.write(f"{record.seq} {record.event_id}\n")
            sys.stdout.flush()
            journal.mark_delivered(
                [Delivered(r.seq, f"remote-{r.event_id}") for r in leased], time.time()
            )


if __name__ == "__main__":
    main()
