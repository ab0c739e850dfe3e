"""A draining process for the SIGKILL test: `python -m tests.sync.drain_child STATE ENDPOINT BUS`.

It opens the journal the parent filled and drains it through the given endpoint, exactly as
`posd sync flush` would; the parent kills it at random moments. A BUS that is an ARN is an
EventBridge v2 bus (the local v2 endpoint): the child then drains with api = "v2".
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from posd.assembly import engine_for
from posd.journal import Journal
from tests.sync.conftest import FAST, STORE_ID, TERMINAL_ID, emulator_session

DRAIN_TIMEOUT_SECONDS = 60.0


def main(state_dir: str, endpoint: str, bus: str) -> int:
    settings = replace(FAST, max_in_flight=2, initial_in_flight=2)
    if bus.startswith("arn:"):
        settings = replace(settings, api="v2", event_bus_arn=bus)
    else:
        settings = replace(settings, event_bus_name=bus)
    with (
        Journal.open(Path(state_dir)) as journal,
        engine_for(
            journal,
            settings,
            store_id=STORE_ID,
            terminal_id=TERMINAL_ID,
            endpoint_url=endpoint,
            session=emulator_session(),
        ) as engine,
    ):
        report = engine.drain(timeout=DRAIN_TIMEOUT_SECONDS)
    return 0 if report.completed else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
