"""`python -m tests.posd.daemon.stand_in_run run ...`: `posd run` with the step 10 reader
names that have no driver yet standing in (`tests.fake_secure_reader`); the merged drivers
are used as they are."""

from __future__ import annotations

from drivers.card.reader import CardReader
from drivers.registry import _TABLE, register_driver
from posd.cli.main import run
from tests.fake_secure_reader import stand_in_for_missing_readers

if __name__ == "__main__":
    for name, target in stand_in_for_missing_readers(_TABLE).items():
        register_driver(CardReader, name, target)
    run()
